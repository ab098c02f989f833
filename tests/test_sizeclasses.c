/* test_sizeclasses.c - the generated size-class table has the properties
 * the allocator relies on. */
#include "export_test.h"
#include "test.h"

int main(void)
{
    CHECK(class_to_size[0] == 0);
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint32_t size = class_to_size[c];
        uintptr_t span = class_to_npages[c] * PAGE_SIZE;
        CHECK_MSG(size % (size < 16 ? 8 : 16) == 0, "class %d size %u misaligned", c, size);
        CHECK_MSG(span % size <= span / 8, "class %d wastes more than 1/8", c);
        if (c > 1)
            CHECK(class_to_size[c - 1] < size);
        /* the reciprocal gives the exact object index for every offset */
        for (uintptr_t off = 0; off < span; off++)
            if (((off * class_infos[c].divmagic) >> 32) != off / size) {
                CHECK_MSG(0, "divmagic wrong: class %d offset %lu", c, (unsigned long)off);
                break;
            }
    }
    CHECK(class_to_size[NUM_SIZE_CLASSES - 1] == MAX_SMALL_SIZE);
    /* size_to_class: the smallest class that fits */
    for (size_t n = 0; n <= MAX_SMALL_SIZE; n++) {
        uint8_t c = size_to_class(n);
        REQUIRE(c >= 1 && c < NUM_SIZE_CLASSES);
        CHECK_MSG(class_to_size[c] >= n, "size %zu class %u too small", n, c);
        if (c > 1)
            CHECK_MSG(class_to_size[c - 1] < (n ? n : 1), "size %zu class %u not smallest", n, c);
    }
    /* every power-of-two alignment up to a page has a class (aligned_alloc) */
    for (uint32_t a = 16; a <= PAGE_SIZE; a *= 2) {
        int found = 0;
        for (int c = 1; c < NUM_SIZE_CLASSES; c++)
            found |= class_to_size[c] % a == 0;
        CHECK(found);
    }
    return test_done();
}
