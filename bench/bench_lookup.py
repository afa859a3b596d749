"""The single-enterprise lookup under loopback load: GET /api/enterprises/<code> with a
token, 4 clients against waitress (4 threads) on 127.0.0.1, the golden data imported, run
and published. Usage: PYTHONPATH=. python bench/bench_lookup.py [LABEL]"""
import csv
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
label = sys.argv[1] if len(sys.argv) > 1 else "lookup"
import logging

logging.getLogger("waitress.queue").setLevel(logging.ERROR)
from service import create_app, db  # noqa: E402
from service.auth import create_user, issue_token
from service.store import import_file
from service.runs import create_run, execute_run, publish
tmp = tempfile.mkdtemp()
app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/b.db", "SECRET_KEY": "k" * 40, "RUNS_INLINE": True})
golden = root / "tests" / "golden"
with app.app_context():
    s = db.session()
    u = create_user(s, "officer", "secret-password-1", "officer")
    token = issue_token(s, u)
    s.commit()
    import_file(s, golden / "records.csv", "records", None)
    import_file(s, golden / "contracts.csv", "contracts", None)
    run = create_run(s, 2022, None)
    execute_run(app.extensions["db_sessions"], run.id)
    s.expire_all()
    publish(s, s.get(type(run), run.id), None); s.commit()
with open(golden / "records.csv", encoding="utf-8") as f:
    codes = sorted({r["credit_code"] for r in csv.DictReader(f)})
from waitress.server import create_server
server = create_server(app, host="127.0.0.1", port=0, threads=4)
port = server.effective_port
threading.Thread(target=server.run, daemon=True).start()
lat = []
def client(n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        t = time.perf_counter()
        c.request("GET", f"/api/enterprises/{codes[i % len(codes)]}", headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        lat.append(time.perf_counter() - t)
for _ in range(2): client(20)            # warm up
lat.clear()
t0 = time.perf_counter()
ths = [threading.Thread(target=client, args=(300,)) for _ in range(4)]
[t.start() for t in ths]; [t.join() for t in ths]
wall = time.perf_counter() - t0
lat.sort()
print(f"{label}: {len(lat)} requests, 4 clients: {len(lat)/wall:.0f} req/s, median {statistics.median(lat)*1000:.1f} ms, "
      f"p95 {lat[int(len(lat)*0.95)]*1000:.1f} ms")
try:
    server.close()
except OSError:
    pass
