"""Writer process for the crash-consistency test: commits batches forever and reports each commit."""
import sys

from edge.events import Event, uuid7
from edge.store import Store

path, batch_size = sys.argv[1], int(sys.argv[2])
store = Store(path)
b = 0
while True:
    b += 1
    events = [Event(id=uuid7(), ts_ms=1_780_000_000_000 + b, kind="gateway.test", gateway_id="g", compound_id="c",
                    source=f"dev-{i % 3}", payload={"batch": b, "i": i, "pad": "x" * 200}) for i in range(batch_size)]
    store.insert_events(events)
    store.kv_set("last_batch", b)
    print(b, flush=True)
