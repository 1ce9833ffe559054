"""generated/ is what `make generate` makes from protos/, byte for byte; the seed proto is
the one we were given; the seed's options are readable at run time."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_webhooks.generated import databricks_pb2, webhook_delivery_pb2, webhooks_pb2
from mlflow_webhooks.generated.scalapb import scalapb_pb2
from tests.support import ROOT

SHARED_SEED = Path(ROOT).parent / "shared/spec/webhooks.proto"


def files_under(top: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(top)): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_is_current(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    shutil.copytree(ROOT / "generated", out, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            # Never reinstall the virtualenv from inside a test run.
            "-o",
            ".venv/.installed",
            "generate",
            f"OUT={out}",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    committed = files_under(ROOT / "generated")
    made = files_under(out)
    assert sorted(made) == sorted(committed), "files added or missing: run make generate"
    changed = [name for name in committed if made[name] != committed[name]]
    assert not changed, f"out of date, run make generate: {changed}"


def test_generated_files_made_from_every_proto() -> None:
    protos = sorted(p.relative_to(ROOT / "protos") for p in (ROOT / "protos").rglob("*.proto"))
    for proto in protos:
        stem = ROOT / "generated" / proto.with_suffix("")
        for suffix in ["_pb2.py", "_pb2.pyi", "_pb2_grpc.py"]:
            assert Path(f"{stem}{suffix}").is_file(), f"{stem}{suffix}"


def test_seed_proto_is_verbatim() -> None:
    if not SHARED_SEED.is_file():
        pytest.skip(f"{SHARED_SEED} is not here to compare with")
    assert filecmp.cmp(ROOT / "protos/webhooks.proto", SHARED_SEED, shallow=False)
    assert (ROOT / "protos/webhooks.proto").read_bytes() == SHARED_SEED.read_bytes()


WEBHOOK_ENDPOINTS = {
    "createWebhook": ("POST", "/mlflow/webhooks", "Create Webhook"),
    "listWebhooks": ("GET", "/mlflow/webhooks", "List Webhooks"),
    "getWebhook": ("GET", "/mlflow/webhooks/{webhook_id}", "Get Webhook"),
    "updateWebhook": ("PATCH", "/mlflow/webhooks/{webhook_id}", "Update Webhook"),
    "deleteWebhook": ("DELETE", "/mlflow/webhooks/{webhook_id}", "Delete Webhook"),
    "testWebhook": ("POST", "/mlflow/webhooks/{webhook_id}/test", "Test Webhook"),
}


def test_rpc_options_readable() -> None:
    service = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"]
    assert sorted(m.name for m in service.methods) == sorted(WEBHOOK_ENDPOINTS)
    for method in service.methods:
        options = method.GetOptions()
        assert options.HasExtension(databricks_pb2.rpc), method.name
        rpc = options.Extensions[databricks_pb2.rpc]
        (endpoint,) = rpc.endpoints
        assert (endpoint.method, endpoint.path, rpc.rpc_doc_title) == WEBHOOK_ENDPOINTS[method.name]
        assert (endpoint.since.major, endpoint.since.minor) == (2, 0)
        assert rpc.visibility == databricks_pb2.PUBLIC


def test_delivery_service_rpc_options_readable() -> None:
    service = webhook_delivery_pb2.DESCRIPTOR.services_by_name["WebhookDeliveryService"]
    assert service.methods
    paths = set()
    for method in service.methods:
        options = method.GetOptions()
        assert options.HasExtension(databricks_pb2.rpc), method.name
        rpc = options.Extensions[databricks_pb2.rpc]
        assert rpc.endpoints, method.name
        for endpoint in rpc.endpoints:
            assert endpoint.method in {"GET", "POST", "PATCH", "DELETE"}
            assert endpoint.path.startswith("/mlflow/")
            paths.add((endpoint.method, endpoint.path))
    assert len(paths) == sum(
        len(m.GetOptions().Extensions[databricks_pb2.rpc].endpoints) for m in service.methods
    )


def test_field_and_file_options_readable() -> None:
    required = {
        "CreateWebhook": {"name", "url", "events"},
        "GetWebhook": {"webhook_id"},
        "UpdateWebhook": {"webhook_id"},
        "DeleteWebhook": {"webhook_id"},
        "TestWebhook": {"webhook_id"},
        "WebhookEvent": {"entity", "action"},
    }
    for message, fields in required.items():
        descriptor = webhooks_pb2.DESCRIPTOR.message_types_by_name[message]
        marked = {
            f.name
            for f in descriptor.fields
            if f.GetOptions().Extensions[databricks_pb2.validate_required]
        }
        assert marked == fields, message
    file_options = webhooks_pb2.DESCRIPTOR.GetOptions()
    assert file_options.Extensions[scalapb_pb2.options].flat_package is True
    create = webhooks_pb2.DESCRIPTOR.message_types_by_name["CreateWebhook"]
    assert list(create.GetOptions().Extensions[scalapb_pb2.message].extends) == [
        "com.databricks.rpc.RPC[$this.Response]"
    ]


def test_list_default_max_results_is_100() -> None:
    # proto2: an unset max_results reads as its declared default.
    assert webhooks_pb2.ListWebhooks().max_results == 100
    assert not webhooks_pb2.ListWebhooks().HasField("max_results")
