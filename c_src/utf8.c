/*
 * utf8.c: telling text from bytes, for binaries on their way into Python.
 *
 * A binary becomes a str when it is well-formed UTF-8 (as Python's strict
 * decoder has it: no overlong forms, no surrogates, nothing above U+10FFFF)
 * and bytes otherwise. Asking Python's decoder would cost the bytes case
 * dearly: a failed decode makes a UnicodeDecodeError holding a copy of the
 * whole input. So the binary is read here first, a word at a time while it
 * is ASCII, which is also what lets an ASCII binary be copied straight into
 * a new str.
 */
#include "pyerl.h"

#include <string.h>

#define HIGH_BITS 0x8080808080808080ULL

size_t
pyerl_ascii_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint64_t word;

    for (; i + sizeof word <= n; i += sizeof word) {
        memcpy(&word, s + i, sizeof word);
        if (word & HIGH_BITS) {
            break;
        }
    }
    while (i < n && s[i] < 0x80) {
        i++;
    }
    return i;
}

/* The length of the well-formed sequence that starts at s (n > 0 bytes
 * left), or 0 if none does (RFC 3629, table 3-7 of the Unicode standard). */
static size_t
sequence_length(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t length, i;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        length = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        length = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = s[0] == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        length = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
        hi = s[0] == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < length || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < length; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return length;
}

int
pyerl_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, step;

    while (i < n) {
        i += pyerl_ascii_prefix(s + i, n - i);
        if (i < n) {
            if (!(step = sequence_length(s + i, n - i))) {
                return 0;
            }
            i += step;
        }
    }
    return 1;
}
