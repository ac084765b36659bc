"""Transport drivers behind ``drivers.transport.Transport``: ``tcp``, ``rtu``, ``rtu_over_tcp``.

Imported lazily through ``drivers.transport.TRANSPORTS``; ``_pymodbus`` holds the shared
wrapping of pymodbus's async clients (error mapping, per-request timeouts, reconnects).
"""

import logging

# A library attaches no handler of its own; this only stops Python's last-resort handler from
# printing pymodbus's per-timeout frame dumps on a CLI that configured no logging.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())
