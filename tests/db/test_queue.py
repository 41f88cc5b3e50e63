"""Queue semantics (issue 6), on SQLite and, when a server can be started, PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from db_samples import crf_spec, train_spec

from rmi_cli.db import (
    Database,
    ExperimentInfo,
    claim,
    complete,
    enqueue,
    enqueue_experiment,
    experiment_tables,
    fail,
    get_job,
    heartbeat,
    open_database,
    release,
    stale_jobs,
    status_counts,
)


def drain(db: Database, worker: str = "w") -> list[str]:
    """Claim and complete until empty; the config hashes in claim order."""
    order = []
    while (job := claim(db, worker=worker)) is not None:
        order.append(job.config_hash)
        assert complete(db, job.id, worker)
    return order


def test_enqueue_is_idempotent_by_config_hash(any_db: Database, db_url: str) -> None:
    spec = train_spec(1)
    assert enqueue(any_db, spec).new
    again = enqueue(any_db, spec)
    assert (again.outcome, again.status) == ("exists", "queued")
    first = enqueue_experiment(any_db, "e", [spec, train_spec(2)])
    second = enqueue_experiment(any_db, "e", [spec, train_spec(2)])
    assert first.names("new") == [train_spec(2).name]
    assert second.names("new") == []
    any_db.close()
    with open_database(db_url, create=False) as reopened:
        assert status_counts(reopened)["queued"] == 2


def test_same_configuration_in_two_experiments_trains_once(any_db: Database) -> None:
    enqueue_experiment(any_db, "a", [train_spec(1, name="rmi-s1")])
    report = enqueue_experiment(any_db, "b", [train_spec(1, name="renamed")])
    assert report.names("exists", "queued") == ["renamed"]
    job = claim(any_db, worker="w")
    assert job is not None
    assert job.names == ("a/rmi-s1", "b/renamed")
    assert claim(any_db, worker="w2") is None


def test_done_is_never_requeued_and_failed_only_when_asked(any_db: Database) -> None:
    done, failed = train_spec(1), train_spec(2)
    enqueue_experiment(any_db, "e", [done, failed])
    job = claim(any_db, worker="w")
    assert job is not None and job.config_hash == done.config_hash
    assert complete(any_db, job.id, "w")
    job = claim(any_db, worker="w")
    assert job is not None and job.config_hash == failed.config_hash
    assert fail(any_db, job.id, "w", "CUDA out of memory", retry=False) == "failed"
    report = enqueue_experiment(any_db, "e", [done, failed])
    assert report.names("exists", "done") == [done.name]
    assert report.names("exists", "failed") == [failed.name]
    report = enqueue_experiment(any_db, "e", [done, failed], requeue_failed=True)
    assert report.names("exists", "done") == [done.name]
    assert report.names("requeued") == [failed.name]
    job = claim(any_db, worker="w")
    assert job is not None
    assert (job.config_hash, job.attempts, job.error) == (failed.config_hash, 1, None)


def test_a_changed_configuration_repoints_the_run_name(any_db: Database) -> None:
    enqueue_experiment(any_db, "e", [train_spec(1, name="main")])
    report = enqueue_experiment(any_db, "e", [train_spec(1, name="main", radius=5)])
    assert report.repointed == ("main",)
    assert status_counts(any_db, "e")["queued"] == 1
    assert status_counts(any_db)["queued"] == 2


def test_what_the_manifest_says_is_replaced_only_by_a_manifest(any_db: Database) -> None:
    tables = [{"kind": "ablation", "rows": "loss.radius", "title": "Table 3(b)"}]
    about = ExperimentInfo("grid", "experiments.yaml", tables)
    enqueue_experiment(any_db, "e", [train_spec(1, name="main")], about=about)
    assert experiment_tables(any_db, "e") == tables
    # A CRF step queued on its own (`rmi crf`) carries no manifest: the entries stay.
    enqueue_experiment(any_db, "e", [crf_spec(train_spec(1), name="crf")])
    assert experiment_tables(any_db, "e") == tables
    enqueue_experiment(any_db, "e", [train_spec(1, name="main")], about=ExperimentInfo())
    assert experiment_tables(any_db, "e") == []


def test_claim_order_is_priority_then_age(any_db: Database) -> None:
    low, high, older = train_spec(1), train_spec(2, priority=5), train_spec(3)
    for spec in (older, low, high):
        enqueue(any_db, spec)
    assert drain(any_db) == [high.config_hash, older.config_hash, low.config_hash]


def test_crf_job_waits_for_its_train_run(any_db: Database) -> None:
    train = train_spec(1)
    enqueue_experiment(any_db, "e", [train, replace(crf_spec(train), priority=9)])
    job = claim(any_db, worker="w")
    assert job is not None and job.kind == "train"
    assert claim(any_db, worker="w2") is None  # the CRF job waits although it ranks higher
    complete(any_db, job.id, "w")
    crf_job = claim(any_db, worker="w2", kinds=["crf"])
    assert crf_job is not None
    assert (crf_job.kind, crf_job.depends_on_hash) == ("crf", train.config_hash)


def test_a_failed_dependency_fails_its_dependents(any_db: Database) -> None:
    train = train_spec(1, max_attempts=1)
    enqueue_experiment(any_db, "e", [train, crf_spec(train)])
    job = claim(any_db, worker="w")
    assert job is not None
    assert fail(any_db, job.id, "w", "loss is NaN at iteration 3\ntraceback...") == "failed"
    assert claim(any_db, worker="w") is None
    crf = get_job(any_db, job.id + 1)
    assert crf is not None and crf.status == "failed"
    assert crf.error == f"its train run {train.config_hash} failed: loss is NaN at iteration 3"


def test_unknown_dependency_is_a_bug(any_db: Database) -> None:
    with pytest.raises(ValueError, match="which is not queued"):
        enqueue(any_db, crf_spec(train_spec(1)))


def test_heartbeat_extends_the_lease_only_for_its_holder(any_db: Database) -> None:
    enqueue(any_db, train_spec(1))
    job = claim(any_db, worker="w1", lease_s=60)
    assert job is not None and job.lease_expires_at is not None
    assert heartbeat(any_db, job.id, "w1", lease_s=120)
    renewed = get_job(any_db, job.id)
    assert renewed is not None and renewed.lease_expires_at > job.lease_expires_at
    assert not heartbeat(any_db, job.id, "w2")
    assert not complete(any_db, job.id, "w2")
    assert fail(any_db, job.id, "w2", "not mine") is None


def test_stale_job_is_reclaimed_and_counts_an_attempt(any_db: Database) -> None:
    enqueue(any_db, train_spec(1))
    # A lease long enough that a loaded machine's next claim still falls inside it.
    first = claim(any_db, worker="dead", lease_s=0.5)
    assert first is not None and not first.reclaimed
    assert claim(any_db, worker="w2") is None  # the lease still runs
    time.sleep(0.6)
    assert [job.id for job in stale_jobs(any_db)] == [first.id]
    assert status_counts(any_db)["stale"] == 1
    second = claim(any_db, worker="w2")
    assert second is not None
    assert (second.id, second.reclaimed, second.attempts, second.worker) == (
        first.id,
        True,
        2,
        "w2",
    )
    assert second.error is not None and "worker dead lost its lease" in second.error
    assert not heartbeat(any_db, first.id, "dead")  # the old worker learns it lost the job
    assert complete(any_db, first.id, "w2")
    assert get_job(any_db, first.id).error is None


def test_stale_job_out_of_attempts_is_failed(any_db: Database) -> None:
    enqueue(any_db, train_spec(1, max_attempts=1))
    job = claim(any_db, worker="dead", lease_s=0.01)
    assert job is not None
    time.sleep(0.05)
    assert claim(any_db, worker="w2") is None
    failed = get_job(any_db, job.id)
    assert failed is not None and failed.status == "failed"
    assert "worker dead lost its lease" in failed.error
    assert failed.error.endswith("failed after 1 attempts")


def test_fail_retries_until_max_attempts(any_db: Database) -> None:
    enqueue(any_db, train_spec(1, max_attempts=2))
    job = claim(any_db, worker="w")
    assert fail(any_db, job.id, "w", "flaky disk") == "queued"
    job = claim(any_db, worker="w")
    assert job is not None and job.attempts == 2 and job.error == "flaky disk"
    assert fail(any_db, job.id, "w", "flaky disk again") == "failed"
    final = get_job(any_db, job.id)
    assert (final.status, final.error, final.attempts) == ("failed", "flaky disk again", 2)


def test_release_gives_the_job_back_without_counting_an_attempt(any_db: Database) -> None:
    enqueue(any_db, train_spec(1, max_attempts=1))
    for _ in range(3):  # interrupted three times, still claimable
        job = claim(any_db, worker="w")
        assert job is not None and job.attempts == 1
        assert release(any_db, job.id, "w")
    released = get_job(any_db, job.id)
    assert (released.status, released.attempts, released.worker) == ("queued", 0, None)
    assert not release(any_db, job.id, "w")  # not held any more


def test_claim_filters(any_db: Database) -> None:
    train = train_spec(1)
    enqueue_experiment(any_db, "a", [train])
    enqueue_experiment(any_db, "b", [train_spec(2)])
    assert claim(any_db, worker="w", kinds=["crf"]) is None
    assert claim(any_db, worker="w", experiment="nope") is None
    job = claim(any_db, worker="w", experiment="b")
    assert job is not None and job.names == (f"b/{train_spec(2).name}",)
    other = get_job(any_db, job.id - 1)
    assert claim(any_db, worker="w", run_ids=[job.id]) is None
    assert claim(any_db, worker="w", run_ids=[other.id]).id == other.id


def test_status_counts(any_db: Database) -> None:
    enqueue_experiment(any_db, "e", [train_spec(s) for s in range(4)])
    enqueue_experiment(any_db, "other", [train_spec(9)])
    first = claim(any_db, worker="w", experiment="e")
    complete(any_db, first.id, "w")
    second = claim(any_db, worker="w", experiment="e")
    fail(any_db, second.id, "w", "boom", retry=False)
    claim(any_db, worker="w", experiment="e", lease_s=0.0)
    time.sleep(0.01)
    assert status_counts(any_db, "e") == {
        "queued": 1,
        "running": 1,
        "done": 1,
        "failed": 1,
        "stale": 1,
    }
    assert status_counts(any_db)["queued"] == 2
