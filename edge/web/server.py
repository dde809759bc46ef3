"""The console's HTTP server: stdlib ThreadingHTTPServer in a daemon thread.

Commands go through :func:`edge.telemetry.commands.handle`, the same parse-validate-dispatch path
as MQTT ``cmd/<name>``, so the console has no second way to touch the store. Live updates are the
events the loop already publishes on the bus: the subscriber only enqueues (O(1), never blocks the
audio loop); each SSE client thread serialises and sends, and drops events when it falls behind.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from edge.control import DeviceControl
from edge.errors import ConfigError, EdgeError
from edge.events import Event, ExamplesDeleted, PredictionMade
from edge.telemetry import commands
from edge.teach.hold_audio import HoldAudioShelf
from edge.web import curate
from edge.web.settings import WebSettings, split_listen

log = logging.getLogger(__name__)

MAX_BODY = 4096
CLIENT_QUEUE = 256
"""Events buffered per SSE client; beyond it the client misses events (the next state catches it up)."""
KEEPALIVE_S = 10.0
PREDICTION_INTERVAL_S = 0.1
"""A page gets at most 10 predictions a second (a hop is 23 ms): enough for a level meter, and it
keeps the client threads from competing with the audio loop for the GIL 43 times a second."""
STATE_INTERVAL_S = 0.5
"""After predictions, the state goes out at most this often (other events send it at once)."""


LIVE_FRAMES_S = 0.1
"""The live spectrogram's frames go to the pages in batches this often (4 or 5 hops a batch)."""


@dataclass(frozen=True)
class LiveFrames(Event):
    """The newest front-end frames, whole dB (the exact frames the classifier sees, rounded)."""

    kind = "frames"
    frames: list


class WebConsole:
    """Serves the page, the state, the event stream and the commands for one engine."""

    def __init__(self, settings: WebSettings, control: DeviceControl, snapshot: Any, holds: HoldAudioShelf) -> None:
        self.settings = settings
        self.control = control
        self.snapshot = snapshot
        self._clients: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._page = resources.files("edge.web").joinpath("console.html").read_bytes()
        self.holds = holds
        """Recent holds' audio (the shelf the holds fill): played back, deleted with their session."""
        host, port = split_listen(settings.listen)
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if settings.cert:
            try:
                self.httpd.socket = _tls_context(settings).wrap_socket(
                    self.httpd.socket, server_side=True,
                    # NOTE: the handshake then happens in the request's thread, so one slow or
                    # plain-HTTP client cannot stall accept() for everybody.
                    do_handshake_on_connect=False)
            except (ConfigError, OSError):
                self.httpd.server_close()
                raise
            self.scheme = "https"
        self._thread: threading.Thread | None = None
        self._next_prediction = 0.0
        self._frames: list[np.ndarray] = []
        self._next_frames = 0.0

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True)
        self._thread.start()
        log.info("web console on %s://%s:%d/", self.scheme, self.httpd.server_address[0], self.port)

    def stop(self) -> None:
        with self._lock:
            for q in self._clients:
                try:
                    q.put_nowait(None)
                except queue.Full:
                    pass
        # NOTE: shutdown() waits for serve_forever to notice; it never returns if that never ran.
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()

    # ------------------------------------------------------------------ loop thread
    def push(self, frames: np.ndarray) -> None:
        """The engine's frame tap: each block's new frames. Only copies and, every 0.1 s, enqueues."""
        if not self._clients:
            return
        self._frames.append(np.array(frames))
        now = time.monotonic()
        if now >= self._next_frames:
            self._next_frames = now + LIVE_FRAMES_S
            batch, self._frames = self._frames, []
            # NOTE: rounding here keeps the client threads' JSON small; ~1 µs per frame.
            self.on_event(LiveFrames(np.rint(np.concatenate(batch)).astype(np.int16).tolist()))

    def on_event(self, event: Event) -> None:
        """Enqueue only: runs on the loop thread for every event."""
        if isinstance(event, ExamplesDeleted) and event.session:
            self.holds.delete(event.session)   # a deleted session's audio goes with it
        if isinstance(event, PredictionMade):
            now = time.monotonic()
            if now < self._next_prediction or not self._clients:
                return
            self._next_prediction = now + PREDICTION_INTERVAL_S
        with self._lock:
            clients = tuple(self._clients)
        for q in clients:
            try:
                q.put_nowait(event)
            except queue.Full:
                pass

    def _subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(CLIENT_QUEUE)
        with self._lock:
            self._clients.append(q)
        return q

    def _unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._clients:
                self._clients.remove(q)

    def authorised(self, header: str | None, query_token: str | None) -> bool:
        token = self.settings.token
        if not token:
            return True
        given = query_token or ""
        if header and header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), token.encode())


def _tls_context(settings: WebSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)   # TLS 1.2+, the stdlib's secure defaults
    try:
        ctx.load_cert_chain(settings.cert, settings.key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"web.cert / web.key: cannot load {settings.cert!r} with {settings.key!r} "
                      f"({getattr(exc, 'reason', None) or exc}); give a PEM certificate and its key") from None
    return ctx


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=str, allow_nan=False).encode()


def _make_handler(console: WebConsole) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass
    Handler.console = console
    return Handler


class _Handler(BaseHTTPRequestHandler):
    console: WebConsole
    server_version = "edge-slider"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("web %s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, _dumps({"ok": False, "error": message}))

    def _check(self) -> tuple[str, bool]:
        url = urlsplit(self.path)
        token = parse_qs(url.query).get("token", [None])[0]
        if not self.console.authorised(self.headers.get("Authorization"), token):
            self._error(HTTPStatus.UNAUTHORIZED, "unauthorised: send 'Authorization: Bearer <web.token>' "
                        "or ?token=<web.token>")
            return url.path, False
        return url.path, True

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if urlsplit(self.path).path == "/":
            # NOTE: the page is static and holds no data: served to anyone, so a visitor without the
            # token gets the console's own "unauthorized" message instead of a bare JSON 401.
            self._send(HTTPStatus.OK, self.console._page, "text/html; charset=utf-8")
            return
        path, ok = self._check()
        if not ok:
            return
        if path == "/api/state":
            self._send(HTTPStatus.OK, _dumps(self.console.snapshot()))
        elif path == "/api/events":
            self._stream()
        elif path in ("/api/sessions", "/api/model") or path.startswith("/api/sessions/"):
            self._curate(path)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page {path!r}: use /, /api/state, /api/events, "
                        "/api/sessions, /api/sessions/<id>/spectrogram|audio.wav, /api/model")

    def _curate(self, path: str) -> None:
        engine = self.console.control
        try:
            if path == "/api/sessions":
                body: Any = {"ok": True, "sessions": curate.sessions(engine)}
            elif path == "/api/model":
                body = {"ok": True, **curate.model_info(engine)}
            else:
                session, sep, tail = path[len("/api/sessions/"):].rpartition("/")
                session = unquote(session)
                if not sep or tail not in ("spectrogram", "audio.wav") or not session or len(session) > 200:
                    self._error(HTTPStatus.BAD_REQUEST, f"bad path {path[:80]!r}: use /api/sessions/<id>/spectrogram "
                                "or /api/sessions/<id>/audio.wav with an id from GET /api/sessions")
                    return
                if tail == "audio.wav":
                    self._send(HTTPStatus.OK, curate.audio(engine, self.console.holds, session), "audio/wav")
                    return
                body = {"ok": True, **curate.spectrogram(engine, session)}
        except curate.NotFound as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
            return
        except EdgeError as exc:
            # NOTE: a damaged store or a busy loop: the reason is already one line with its fix.
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc).splitlines()[0])
            return
        self._send(HTTPStatus.OK, _dumps(body))

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        path, ok = self._check()
        if not ok:
            return
        if path != "/api/command":
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {path!r}: POST /api/command")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(HTTPStatus.BAD_REQUEST, f"body of {length} bytes: at most {MAX_BODY}")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"body is not JSON: {exc}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            self._error(HTTPStatus.BAD_REQUEST, 'body must be a JSON object with "command", e.g. {"command": "train"}')
            return
        name = body.pop("command")
        # NOTE: the same handler as MQTT cmd/<name>: one validation, one request path to the engine.
        reply = commands.handle(name, _dumps(body), self.console.control, MAX_BODY)
        self._send(HTTPStatus.OK if reply.get("ok") else HTTPStatus.BAD_REQUEST, _dumps(reply))

    def _stream(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        q = self.console._subscribe()
        try:
            self._push("state", self.console.snapshot())
            state_sent = time.monotonic()
            while True:
                try:
                    event = q.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                if event is None:
                    return
                self._push("event", event.to_dict())
                now = time.monotonic()
                if not isinstance(event, (PredictionMade, LiveFrames)) or now - state_sent >= STATE_INTERVAL_S:
                    self._push("state", self.console.snapshot())
                    state_sent = now
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            self.console._unsubscribe(q)

    def _push(self, name: str, data: Any) -> None:
        self.wfile.write(b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n")
        self.wfile.flush()
