#include <jansson.h>
#include <stdio.h>

/* "%.*g" of a double into buf, as jansson's dump formats a real (before its own fix-ups);
   for Swift, which cannot call a variadic C function without boxing each argument. */
static inline int annexd_format_double(char *buf, size_t size, int precision, double value) {
    return snprintf(buf, size, "%.*g", precision, value);
}
