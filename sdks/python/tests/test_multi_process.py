"""4 processes × 50 threads on one expired connection, through a real server: 1 redemption."""

import json
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).parent / "workers" / "threads_worker.py"
PROCESSES, THREADS = 4, 50


def test_four_processes_of_fifty_threads_redeem_once(harness):
    setup = harness.setup("expired_refreshes_once")
    cid = setup["connection_id"]
    args = [sys.executable, str(WORKER), setup["base_url"], setup["api_key"], cid, str(THREADS)]
    workers = [
        subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:  # every process started and its client made before any asks
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [r["errors"] for r in reports] == [[]] * PROCESSES
    assert sum(r["ok"] for r in reports) == PROCESSES * THREADS
    # One token for everyone: each process shared one request, the server one refresh.
    assert {f for r in reports for f in r["fingerprints"]} == {reports[0]["fingerprints"][0]}
    assert harness.stats("expired_refreshes_once", cid) == {"redemptions": 1, "hand_outs": PROCESSES}
