"""lightfold.release.processes: the `processes` and `cron` keys of `status` from an agent's reply
(and from an older agent's, which has neither), the `status` lines, and the `logs --process` /
`--all` plans and their labelled lines (as text)."""

from __future__ import annotations

import json
import shlex

import pytest

from lightfold.cli.render import process_lines
from lightfold.errors import UsageError
from lightfold.release import operate
from lightfold.release.processes import (
    cron_status,
    label_line,
    labelled_logs_command,
    log_units,
    processes_status,
    unit_label,
)

# What the agent's status reply carries (agent/protocol.py ProcessState, CronState), as JSON.
PROCESSES = [
    {"name": "worker", "instance": "worker-1", "unit": "lightfold-web.proc@worker-1.service", "state": "active",
     "sub_state": "running", "restarts": 0, "release": "20260101120000"},
    {"name": "worker", "instance": "worker-2", "unit": "lightfold-web.proc@worker-2.service", "state": "failed",
     "sub_state": "failed", "restarts": 3, "release": "20260101120000"},
    {"name": "mailer", "instance": "mailer-1", "unit": "lightfold-web.proc@mailer-1.service", "state": "active",
     "sub_state": "running", "restarts": 1, "release": "20260101120000"},
]
CRON = [
    {"name": "cleanup", "schedule": "*:0/5", "unit": "lightfold-web.cron@cleanup.service",
     "timer": "lightfold-web.cron-cleanup.timer", "last_run": "2026-01-01T12:05:00Z", "last_result": "success",
     "next_run": "2026-01-01T12:10:00Z", "release": "20260101120000"},
    {"name": "report", "schedule": "daily", "unit": "lightfold-web.cron@report.service",
     "timer": "lightfold-web.cron-report.timer", "last_run": None, "last_result": None,
     "next_run": "2026-01-02T00:00:00Z", "release": "20260101120000"},
]
REPLY = {"processes": PROCESSES, "cron": CRON}


def test_processes_are_grouped_by_name_with_each_units_state():
    worker, mailer = processes_status(REPLY)
    assert (worker["name"], worker["count"], worker["restarts"], worker["release"]) == ("worker", 2, 3,
                                                                                       "20260101120000")
    assert worker["state"] == "mixed" and mailer["state"] == "active"
    assert worker["units"][1] == {"name": "lightfold-web.proc@worker-2.service", "instance": "worker-2",
                                  "state": "failed", "sub_state": "failed", "restarts": 3}


def test_cron_jobs_keep_schedule_last_and_next_run():
    cleanup, report = cron_status(REPLY)
    assert cleanup == {"name": "cleanup", "schedule": "*:0/5", "last_run": "2026-01-01T12:05:00Z",
                       "last_result": "success", "next_run": "2026-01-01T12:10:00Z", "release": "20260101120000",
                       "timer": "lightfold-web.cron-cleanup.timer"}
    assert report["last_run"] is None and report["last_result"] is None


def test_an_older_agent_without_processes_gives_empty_lists():
    from lightfold.agent.protocol import StatusReply

    s = operate.deploy_status(StatusReply.from_dict({"live": {"release": None}}))
    assert s["processes"] == [] and s["cron"] == []
    assert operate.EMPTY_DEPLOY_STATUS["processes"] == [] and operate.EMPTY_DEPLOY_STATUS["cron"] == []


def test_status_lines_name_every_process_and_job():
    info = {"processes": processes_status(REPLY), "cron": cron_status(REPLY)}
    lines = process_lines(info)
    assert len(lines) == 4
    assert "worker x2" in lines[0] and "mixed" in lines[0] and "worker-2 failed/failed" in lines[0]
    assert "3 restarts" in lines[0] and "release 20260101120000" in lines[0]
    assert "cleanup (*:0/5): last 2026-01-01T12:05:00Z" in lines[2] and "success" in lines[2]
    assert "report (daily): never run yet, next 2026-01-02T00:00:00Z" in lines[3]
    assert process_lines({"processes": [], "cron": []}) == process_lines({}) == []


def test_logs_of_a_process_read_every_instance_of_it():
    assert log_units("web", ["green"], process="worker") == ["lightfold-web.proc@worker-*.service"]
    assert log_units("web", ["green"], process="worker", known=["mailer", "worker"]) == [
        "lightfold-web.proc@worker-*.service"]
    with pytest.raises(UsageError, match="no process 'wroker' \\(its processes: mailer, worker\\)"):
        log_units("web", ["green"], process="wroker", known=["mailer", "worker"])
    with pytest.raises(UsageError, match="not a process name"):
        log_units("web", ["green"], process="worker-1")


def test_logs_all_reads_the_slots_every_process_and_every_cron_run():
    assert log_units("web", ["blue", "green"], everything=True) == [
        "lightfold-web@blue.service", "lightfold-web@green.service",
        "lightfold-web.proc@*.service", "lightfold-web.cron@*.service"]


def test_labelled_logs_plan_asks_for_json_lines_and_keeps_the_options():
    argv = shlex.split(labelled_logs_command(["lightfold-web.proc@*.service"], lines=20, since="1 hour ago",
                                             follow=True))
    assert argv[:2] == ["journalctl", "--no-pager"] and argv[argv.index("-o") + 1] == "json"
    assert argv[argv.index("-u") + 1] == "lightfold-web.proc@*.service"  # a pattern, passed as one word
    assert argv[argv.index("-n") + 1] == "20" and argv[argv.index("--since") + 1] == "1 hour ago"
    assert argv[-1] == "-f" and "--output-fields=MESSAGE,_SYSTEMD_UNIT,UNIT" in argv


def test_each_line_is_labelled_with_the_unit_it_came_from():
    def line(**fields) -> str:
        return json.dumps({"__REALTIME_TIMESTAMP": "1767268800000000", **fields})

    assert label_line("web", line(_SYSTEMD_UNIT="lightfold-web.proc@worker-1.service", MESSAGE="job 7 done")) == (
        "2026-01-01T12:00:00Z worker-1 job 7 done")
    assert label_line("web", line(_SYSTEMD_UNIT="lightfold-web@blue.service", MESSAGE="GET /")).split()[1] == "web:blue"
    # systemd's own lines about a unit come from init.scope and name the unit in UNIT
    started = line(_SYSTEMD_UNIT="init.scope", UNIT="lightfold-web.cron@cleanup.service", MESSAGE="Started it.")
    assert label_line("web", started) == "2026-01-01T12:00:00Z cron:cleanup Started it."
    assert label_line("web", line(_SYSTEMD_UNIT="x.service", MESSAGE=[104, 105])).endswith("x hi")
    assert label_line("web", "not json") is None and label_line("web", "[1]") is None
    assert unit_label("web", "lightfold-webx@blue.service") == "lightfold-webx@blue"


def test_the_agents_reply_read_through_the_protocol_classes_gives_the_same_keys():
    from lightfold.agent.protocol import StatusReply

    s = operate.deploy_status(StatusReply.from_dict({"live": {"release": "20260101120000"}, **REPLY}))
    assert s["processes"] == processes_status(REPLY) and s["cron"] == cron_status(REPLY)
