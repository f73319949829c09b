/*
 * utf8.h: which binaries are text (utf8.c).
 */
#ifndef PYERL_UTF8_H
#define PYERL_UTF8_H

#include "common.h"

/* How many of the n bytes at s, from the start, are ASCII. */
size_t pyerl_ascii_prefix(const unsigned char *s, size_t n);

/* Whether the n bytes at s are well-formed UTF-8, as Python's strict
 * decoder judges. */
int pyerl_utf8_valid(const unsigned char *s, size_t n);

#endif
