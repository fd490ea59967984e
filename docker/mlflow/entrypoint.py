"""Entrypoint of the MLflow server container: write the basic-auth config, then become the command.

``mlflow server --app-name basic-auth`` reads its settings from the ini file named by
``MLFLOW_AUTH_CONFIG_PATH`` (section ``[mlflow]``: ``default_permission``, ``database_uri``,
``admin_username``, ``admin_password``). MLflow ships no default admin password: the first start
against an empty user store creates the admin from these values, later starts ignore them. The file
is generated here from the environment at every start, readable by this user only, so no
credential is baked into the image or committed. tests/integration/stack.py runs this same script.

Environment: MLFLOW_AUTH_DATABASE_URI, MLFLOW_AUTH_ADMIN_USERNAME, MLFLOW_AUTH_ADMIN_PASSWORD
(required), MLFLOW_AUTH_DEFAULT_PERMISSION (default READ), MLFLOW_AUTH_CONFIG_PATH (where to write).
"""
from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

REQUIRED = ("MLFLOW_AUTH_DATABASE_URI", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD")
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


def auth_config(env: dict[str, str]) -> configparser.ConfigParser:
    """The ``[mlflow]`` section MLflow's basic-auth app expects, from the environment."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise SystemExit(f"mlflow entrypoint: set {', '.join(missing)}")
    permission = env.get("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ")
    if permission not in PERMISSIONS:
        raise SystemExit(f"mlflow entrypoint: MLFLOW_AUTH_DEFAULT_PERMISSION must be one of {PERMISSIONS}")
    values = {
        "default_permission": permission,
        "database_uri": env["MLFLOW_AUTH_DATABASE_URI"],
        "admin_username": env["MLFLOW_AUTH_ADMIN_USERNAME"],
        "admin_password": env["MLFLOW_AUTH_ADMIN_PASSWORD"],
    }
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise SystemExit(f"mlflow entrypoint: {key} must be one line")
    config = configparser.ConfigParser()
    # MLflow reads the file with interpolation on: a literal % (URL-encoded passwords) is %%.
    config["mlflow"] = {key: value.replace("%", "%%") for key, value in values.items()}
    return config


def write_auth_config(env: dict[str, str]) -> Path:
    path = Path(env.get("MLFLOW_AUTH_CONFIG_PATH") or "basic_auth.ini")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        auth_config(env).write(handle)
    os.chmod(path, 0o600)  # an existing file keeps its mode on open()
    return path


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: entrypoint.py COMMAND [ARGS...]  (e.g. mlflow server ...)")
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(dict(os.environ)).resolve())
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
