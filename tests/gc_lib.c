/* gc_lib.c - a shared object whose data and bss hold GC pointers.
 *
 * test_gc_roots loads it with dlopen and keeps the only pointers to some
 * objects in these arrays: the collector must find the writable segments of
 * libraries loaded after the program started. One array is initialised (it
 * lands in .data), the other is not (.bss).
 */
#define GC_LIB_SLOTS 64

__attribute__((visibility("default"))) void *gc_lib_data[GC_LIB_SLOTS] = {(void *)1};
__attribute__((visibility("default"))) void *gc_lib_bss[GC_LIB_SLOTS];
