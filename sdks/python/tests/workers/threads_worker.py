"""One process of the multi-process test: a Client, N threads asking for one connection's token
at once when "go" arrives on stdin. Prints {"versions": [...], "fingerprints": [...], "errors": [...]}:
the token's SHA-256 prefix, never the token."""

import hashlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from tokenwarden import Client

base_url, api_key, connection_id, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = Client(base_url, api_key)
start = threading.Barrier(threads)
print("ready", flush=True)
sys.stdin.readline()


def call(_):
    start.wait()
    try:
        token = client.get_access_token(connection_id)
        return token.version, hashlib.sha256(token.access_token.encode()).hexdigest()[:16], None
    except Exception as error:  # noqa: BLE001 - reported to the test
        return None, None, repr(error)


with ThreadPoolExecutor(threads) as pool:
    results = list(pool.map(call, range(threads)))
print(
    json.dumps(
        {
            "versions": sorted({v for v, _, _ in results if v is not None}),
            "fingerprints": sorted({f for _, f, _ in results if f is not None}),
            "ok": sum(1 for _, f, _ in results if f is not None),
            "errors": [e for _, _, e in results if e is not None],
        }
    ),
    flush=True,
)
client.close()
