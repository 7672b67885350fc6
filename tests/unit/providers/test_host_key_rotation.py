"""Host key rotation of cloud servers: what the laptop trusts at each step (the key store), the
server-side commands as text, and reading the new key back. The rotation itself runs in
tests/e2e/test_cloud_deploy.py against the fake clouds' sandbox machines."""

from __future__ import annotations

import pytest

from lightfold.errors import LightfoldError
from lightfold.providers import cloud
from lightfold.server import hardening

NEW = "ssh-ed25519 " + "B" * 68


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTFOLD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_trust_moves_from_the_user_data_key_to_the_rotated_one(home):
    user_data = cloud.load_or_create_host_key("web")
    assert cloud.trusted_host_keys("web") == [user_data.public_openssh] and not cloud.host_key_rotated("web")
    cloud.record_rotation("web", rotating=NEW)  # in flight: either key may be the live one
    assert cloud.trusted_host_keys("web") == [user_data.public_openssh, NEW] and not cloud.host_key_rotated("web")
    cloud.record_rotation("web", rotated=NEW)
    assert cloud.trusted_host_keys("web") == [NEW] and cloud.host_key_rotated("web")
    # The user-data key stays recorded for a create retried by tag (the same user data again).
    assert cloud.load_or_create_host_key("web") == user_data
    assert (home / "host-keys" / "web.json").stat().st_mode & 0o777 == 0o600


def test_a_rotation_given_up_trusts_the_old_key_alone_again(home):
    old = cloud.load_or_create_host_key("web").public_openssh
    cloud.record_rotation("web", rotating=NEW)
    cloud.record_rotation("web")
    assert cloud.trusted_host_keys("web") == [old]


def test_no_stored_key_trusts_nothing(home):
    assert cloud.trusted_host_keys("nope") == []


def test_the_server_side_commands_keep_the_old_key_until_the_new_one_is_confirmed():
    gen, install, restore, finish = (hardening.rotate_generate(), hardening.rotate_install(),
                                     hardening.rotate_restore(), hardening.rotate_finish())
    assert "ssh-keygen -q -t ed25519 -N '' -C '' -f /etc/ssh/ssh_host_ed25519_key.lightfold-new" in gen
    assert gen.startswith("set -eu; umask 077;")
    assert install.index("ssh_host_ed25519_key.lightfold-old") < install.index("mv -f")
    assert install.endswith("systemctl reload ssh || systemctl reload sshd")  # reload: open sessions stay
    assert "mv -f /etc/ssh/ssh_host_ed25519_key.lightfold-old /etc/ssh/ssh_host_ed25519_key" in restore
    assert finish == "rm -f /etc/ssh/ssh_host_ed25519_key.lightfold-old /etc/ssh/ssh_host_ed25519_key.lightfold-old.pub"


def test_the_new_public_key_is_read_strictly():
    assert hardening.rotated_public_key(f"noise\n{NEW} \n") == NEW
    for bad in ("", "ssh-rsa AAAA", "ssh-ed25519 short", f"{NEW[:-1]}!"):
        with pytest.raises(LightfoldError, match="new ed25519 host key"):
            hardening.rotated_public_key(bad)
