/* config.h for building numactl 2.0.16 without autotools (see ../Makefile). */
#define TLS __thread
#define HAVE_ATTRIBUTE_SYMVER 1
