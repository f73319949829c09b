"""The Python half of the example release (src/greeter.erl calls it)."""

import logging
import sys

log = logging.getLogger('greeter')


def hello(name):
    log.warning('greeting %s', name)
    return 'Hello, %s, from Python %d.%d' % (name, sys.version_info[0], sys.version_info[1])
