"""A stored run keeps each enterprise's trace, provenance and indicators packed (zstd, against a
dictionary trained on the run's own texts, service.packing): the packing is lossless, a
lookup answers exactly as from text, runs stored as text before are read as before, and
the migration's downgrade puts every packed text back as text."""
import json
import random
import threading

import sqlalchemy as sa
from alembic import command

from service import db
from service.db import alembic_config
from service.models import Result, Run, RunFile
from service.packing import MIN_SAMPLES, Packer, unpack


def _texts(n, seed=7):
    rnd = random.Random(seed)
    stages = ["初创期", "成长期", "扩张期", "成熟期"]
    return [json.dumps({"credit_code": f"9141070{i:011d}", "stage": {"clause": "STAGE", "text": rnd.choice(stages)},
                        "scores": {"final": round(rnd.uniform(0, 100), 4), "rank": rnd.randint(1, n)},
                        "rewards": [{"clause": "RW-5", "yuan": rnd.randint(0, 500000)}] * rnd.randint(0, 3)},
                       ensure_ascii=False).encode() for i in range(n)]


def test_packing_is_lossless_with_or_without_a_dictionary():
    many, few = _texts(600), _texts(MIN_SAMPLES - 1, seed=8)
    with_dictionary, without = Packer(many), Packer(few)
    assert with_dictionary.dictionary and without.dictionary is None
    for packer, texts, key in ((with_dictionary, many, "many"), (without, few, "few")):
        blobs = packer.pack(texts)
        assert [unpack(b, key, lambda: packer.dictionary) for b in blobs] == [t.decode() for t in texts]
    # the dictionary is what makes a text small: the same texts packed alone are larger
    assert sum(map(len, with_dictionary.pack(many))) * 2 < sum(map(len, Packer(many[:10]).pack(many)))


def test_a_thread_reads_the_dictionary_once_and_threads_do_not_share_a_decompressor():
    texts = _texts(400)
    packer = Packer(texts)
    blobs = packer.pack(texts)
    reads, errors = [], []
    together = threading.Barrier(4)       # all alive at once: no thread's id is reused

    def dictionary():
        reads.append(threading.get_ident())
        return packer.dictionary

    def work():
        try:
            together.wait(timeout=30)
            for _ in range(5):
                assert [unpack(b, ("threads", 1), dictionary) for b in blobs] == [t.decode() for t in texts]
        except Exception as exc:       # reported below: an assertion in a thread would be lost
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(reads) == len(set(reads)) == 4


def _answers(p, codes):
    return {c: (p.get(f"/api/enterprises/{c}?run={p.run_id}", "officer").get_json(),
                p.get(f"/api/enterprises/{c}/eligibility?run={p.run_id}", "officer").get_json())
            for c in codes}


def _texts_of(s, run):
    from service.provenance import stored_provenance
    from service.query import stored_indicators, stored_trace
    return {r.credit_code: (stored_trace(s, run, r), stored_provenance(s, run, r), stored_indicators(s, run, r))
            for r in s.query(Result).filter_by(run_id=run.id)}


def test_a_run_stored_as_text_is_read_as_a_packed_one(golden_park):
    """The same run with its texts unpacked into the text columns (as runs stored before
    December 2026 are) gives the same answers: trace, provenance, indicators, eligibility."""
    p = golden_park
    codes = [p.own, p.other] + p.codes[:3]
    packed = _answers(p, codes)
    assert all(a["trace"] and a["provenance"] for a, _ in packed.values())
    with p.app.app_context():
        s = db.session()
        run = s.get(Run, p.run_id)
        names = ["trace.zdict", "provenance.zdict", "indicators.zdict"]
        assert all(s.get(RunFile, (run.id, name)) for name in names)
        texts = _texts_of(s, run)
        for r in s.query(Result).filter_by(run_id=run.id):
            r.trace, r.provenance, r.indicators = texts[r.credit_code]
            r.trace_packed = r.provenance_packed = r.indicators_packed = None
        s.query(RunFile).filter(RunFile.run_id == run.id, RunFile.name.in_(names)).delete(synchronize_session=False)
        s.commit()
    assert _answers(p, codes) == packed


def test_the_downgrade_puts_every_packed_text_back(golden_park):
    p = golden_park
    url = p.app.config["DATABASE_URL"]
    codes = [p.own, p.other]
    before_api = _answers(p, codes)
    with p.app.app_context():
        s = db.session()
        before = _texts_of(s, s.get(Run, p.run_id))
        s.close()
    p.app.extensions["db_engine"].dispose()
    cfg = alembic_config(url)
    command.downgrade(cfg, "0010_results_stage_score")
    eng = sa.create_engine(url)
    try:
        assert not ({"trace_packed", "provenance_packed", "indicators_packed"}
                    & {c["name"] for c in sa.inspect(eng).get_columns("results")})
        with eng.connect() as c:
            got = {code: (t, pr, ind) for code, t, pr, ind in c.execute(sa.text(
                "SELECT credit_code, trace, provenance, indicators FROM results WHERE run_id = :r"), {"r": p.run_id})}
        assert got == before and len(got) == 300
        command.upgrade(cfg, "head")
        indexes = {i["name"] for i in sa.inspect(eng).get_indexes("results")}
        assert {"ix_results_run_stage_score", "ix_results_run_rank", "ix_results_run_score"} <= indexes
        # 0010's order kept through SQLite's copy of the table (a page of a stage by final score)
        with eng.connect() as c:
            if url.startswith("sqlite"):
                made = c.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_results_run_stage_score'"))
            else:
                made = c.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_results_run_stage_score'"))
            assert "final_score DESC" in made.scalar_one()
    finally:
        eng.dispose()
    assert _answers(p, codes) == before_api


def test_a_thread_keeps_the_dictionaries_it_used_last():
    """The per-thread cache drops the least recently used dictionary when full, so a lookup's
    three (trace, provenance, indicators) are not dropped by one another."""
    from service import packing
    texts = _texts(300)
    packer = Packer(texts)
    blob = packer.pack(texts[:1])[0]
    reads = []

    def dictionary(key):
        def read():
            reads.append(key)
            return packer.dictionary
        return read
    for k in range(packing._MAX_KEYS - 2):           # a cache two short of full
        unpack(blob, ("lru", k), dictionary(k))
    for _ in range(2):                                # one lookup's three, twice
        for key in ("trace", "provenance", "indicators"):
            assert unpack(blob, ("lru", key), dictionary(key)) == texts[0].decode()
    assert reads.count("trace") == reads.count("provenance") == reads.count("indicators") == 1
    assert unpack(blob, ("lru", 0), dictionary(0)) and reads.count(0) == 2      # the oldest was let go
