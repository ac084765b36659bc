"""Transport drivers behind ``drivers.transport.Transport``: ``tcp``, ``rtu``, ``rtu_over_tcp``.

Imported lazily through ``drivers.transport.TRANSPORTS``; ``_pymodbus`` holds the shared
wrapping of pymodbus's async clients (error mapping, per-request timeouts, reconnects),
``_pymodbus_logs`` gives pymodbus's own log lines the bus and device they are about. They
import only ``drivers.transport`` and ``drivers.errors`` of ours, plus pymodbus and pyserial.
"""

import logging

from drivers.transports import _pymodbus_logs

# A library attaches no handler of its own; this only stops Python's last-resort handler from
# printing pymodbus's per-timeout frame dumps on a CLI that configured no logging.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())
_pymodbus_logs.install()
