"""A small Flask app: the example the build benchmark builds."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello from an immutable release\n"


@app.get("/health")
def health() -> tuple[object, int]:
    return jsonify(status="ok"), 200
