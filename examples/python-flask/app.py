"""A small Flask app used by lightfold's demo and end-to-end tests. Serves on $PORT via gunicorn."""

import os

from flask import Flask, Response

app = Flask(__name__)
MESSAGE = "hello from lightfold (python)"


@app.get("/")
def index() -> Response:
    return Response(MESSAGE + "\n", mimetype="text/plain")


@app.get("/healthz")
def health() -> str:
    return "ok"


@app.get("/env/<name>")
def env(name: str) -> Response:
    value = os.environ.get(name)
    if value is None:
        return Response("unset", status=404)
    return Response(value.encode("utf-8"), mimetype="application/octet-stream")
