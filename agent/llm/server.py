"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, so tests and benchmarks cross litellm's real HTTP path."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from agent.llm.scripted import Turn

logger = logging.getLogger(__name__)

Item = Turn | str | dict[str, Any]
"""A turn, a text answer, a turn's dict form, or a fault dict ({"fault": "http" | "break_stream" | ...})."""
ServerScript = Sequence[Item] | Callable[[dict[str, Any]], Item]

CONTEXT_OVERFLOW_MESSAGE = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. "
    "Please reduce the length of the messages."
)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}
_DEFAULT_MESSAGES = {
    401: "Incorrect API key provided.",
    403: "You are not allowed to use this model.",
    404: "The model does not exist or you do not have access to it.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    503: "The engine is currently overloaded, please try again later.",
}
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key"}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An error in the shape OpenAI sends: {"error": {"message", "type", "param", "code"}}."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: str = ""
    """The client's address and port ("127.0.0.1:53122"): the same for requests over one kept-alive connection."""

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        """JSON form; credentials are masked to their last four characters unless `redact` is False."""
        headers = {k: _mask(v) if redact and k.lower() in _SECRET_HEADERS else v for k, v in self.headers.items()}
        return {"method": self.method, "path": self.path, "headers": headers, "body": self.body}


def _mask(value: str) -> str:
    return f"***{value[-4:]}" if len(value) > 8 else "***"


def _fault(item: Item) -> dict[str, Any] | None:
    return item if isinstance(item, dict) and "fault" in item else None


def _turn(item: Item) -> Turn:
    if isinstance(item, Turn):
        return item
    if isinstance(item, str):
        return Turn(text=item)
    return Turn.from_dict(item)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a test of a size limit or a timeout) is normal here, not a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s hung up", client_address)
            return
        super().handle_error(request, client_address)


class ScriptedServer:
    """Answers POST /v1/chat/completions from `script`, one item per request; GET /v1/models lists one model.

    Use as a context manager: `with ScriptedServer([say("hi")]) as srv: ... srv.base_url`.
    """

    def __init__(
        self,
        script: ServerScript,
        *,
        port: int = 0,
        model: str = "scripted",
        chunk_chars: int = 6,
        record: Path | None = None,
        timings: Path | None = None,
    ) -> None:
        self.script = script
        self.model = model
        self.chunk_chars = chunk_chars
        """Text and tool arguments are streamed in pieces of this many characters."""
        self.record = record
        self.timings = timings
        """Append {"received", "answered"} (time.monotonic(), comparable across processes) per completion."""
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._index = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() or use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def remaining(self) -> int:
        """Script items not yet served (0 for a callable script)."""
        return 0 if callable(self.script) else len(self.script) - self._index

    def start(self) -> ScriptedServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _QuietServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="scripted-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def note(self, request: RecordedRequest) -> None:
        """Keep a request (and append it to the record file)."""
        with self._lock:
            self.requests.append(request)
            if self.record is not None:
                with self.record.open("a") as f:
                    f.write(json.dumps(request.to_dict()) + "\n")

    def next_item(self, body: dict[str, Any]) -> Item | None:
        """The reply to this request, or None when the script is exhausted."""
        if callable(self.script):
            return self.script(body)
        with self._lock:
            if self._index >= len(self.script):
                return None
            self._index += 1
            return self.script[self._index - 1]

    def note_timing(self, received: float, answered: float) -> None:
        if self.timings is not None:
            with self._lock, self.timings.open("a") as f:
                f.write(json.dumps({"received": received, "answered": answered}) + "\n")

    def wait(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops."""
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately; without this each waits ~40 ms
    server_state: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("scripted server: " + format, *args)

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, error_body(404, f"no route for GET {self.path}"))
        model = {"id": self.server_state.model, "object": "model", "created": 0, "owned_by": "scripted"}
        self._json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = time.monotonic()
        try:
            self._post(raw)
        finally:
            self.server_state.note_timing(received, time.monotonic())

    def _post(self, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._record(raw.decode(errors="replace"))
            return self._json(400, error_body(400, "request body is not valid JSON"))
        self._record(body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, error_body(404, f"no route for POST {self.path}"))
        try:
            item = self.server_state.next_item(body)
            fault = None if item is None else _fault(item)
            turn = None if item is None or fault is not None else _turn(item)
        except Exception as e:  # a broken script is the test's bug: say so in the answer
            logger.exception("scripted server: the script failed")
            return self._json(500, error_body(500, f"scripted server: the script failed: {e!r}", code="script_error"))
        if item is None:
            served = len(self.server_state.script) if not callable(self.server_state.script) else 0
            msg = f"scripted server: the script is exhausted (all {served} items were served); add more turns"
            return self._json(500, error_body(500, msg, code="script_exhausted"))
        if fault is not None:
            return self._fault(body, fault)
        if turn is not None:
            self._answer(body, turn)

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        peer = ":".join(str(part) for part in self.client_address[:2])
        self.server_state.note(RecordedRequest(self.command, self.path, headers, body, peer))

    def _fault(self, body: dict[str, Any], fault: dict[str, Any]) -> None:
        kind = fault["fault"]
        if kind == "http":
            status = int(fault.get("status", 500))
            message = fault.get("message") or _DEFAULT_MESSAGES.get(status, f"scripted HTTP {status}")
            payload = fault.get("body") or error_body(status, message, code=fault.get("code"))
            return self._json(status, payload, fault.get("headers") or {})
        if kind == "context_overflow":
            message = fault.get("message", CONTEXT_OVERFLOW_MESSAGE)
            return self._json(400, error_body(400, message, code="context_length_exceeded", param="messages"))
        if kind == "hang":
            self.server_state.wait(float(fault.get("seconds", 30)))
            return self._drop()
        if kind == "break_stream":
            return self._answer(body, _turn(fault.get("turn") or {}), cut_after=int(fault.get("after_chunks", 1)))
        if kind == "slow_stream":
            return self._answer(body, _turn(fault.get("turn") or {}), pause=float(fault.get("chunk_delay", 0.1)))
        msg = f"scripted server: unknown fault {kind!r}; use http, break_stream, slow_stream, hang or context_overflow"
        self._json(500, error_body(500, msg))

    def _answer(self, body: dict[str, Any], turn: Turn, cut_after: int | None = None, pause: float = 0.0) -> None:
        reply = _Reply(body, turn, self.server_state)
        if not body.get("stream"):
            data = json.dumps(reply.completion()).encode()
            if cut_after is not None:
                self._start(200, "application/json", {"Content-Length": str(len(data))})
                self.wfile.write(data[: len(data) // 2])
                return self._drop()
            return self._json(200, reply.completion())
        self._start(200, "text/event-stream", {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for n, event in enumerate(reply.events(include_usage)):
            if cut_after is not None and n >= cut_after:
                return self._drop()
            if pause and n:
                self.server_state.wait(pause)
            self._chunk(f"data: {event}\n\n".encode())
        self._chunk(b"")

    def _start(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._start(status, "application/json", {"Content-Length": str(len(data)), **(headers or {})})
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection without finishing the response."""
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Reply:
    """One scripted turn rendered as a chat.completion or as chat.completion.chunk events."""

    def __init__(self, body: dict[str, Any], turn: Turn, state: ScriptedServer) -> None:
        self.turn = turn
        self.chunk = state.chunk_chars
        self.model = str(body.get("model") or state.model)
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.finish = "tool_calls" if turn.tool_calls else "stop"
        self.prompt_chars = len(json.dumps(body.get("messages") or [])) + len(json.dumps(body.get("tools") or []))

    def usage(self) -> dict[str, Any]:
        u = self.turn.usage
        if u is None:
            prompt = self.prompt_chars // 4 + 1
            completion = len(self.turn.text) // 4 + sum(len(c.arguments) // 4 + 4 for c in self.turn.tool_calls) + 1
            cached = 0
        else:
            prompt, completion, cached = u.prompt_tokens, u.completion_tokens, u.cached_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.turn.text or None, "refusal": None}
        if self.turn.tool_calls:
            message["tool_calls"] = [c.to_dict() for c in self.turn.tool_calls]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}],
            "usage": self.usage(),
            "system_fingerprint": None,
        }

    def _pieces(self, text: str) -> list[str]:
        return [text[i : i + self.chunk] for i in range(0, len(text), self.chunk)]

    def _deltas(self) -> Iterator[dict[str, Any]]:
        yield {"role": "assistant", "content": ""}
        for piece in self._pieces(self.turn.text):
            yield {"content": piece}
        for i, call in enumerate(self.turn.tool_calls):
            head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            yield {"tool_calls": [head]}
            for piece in self._pieces(call.arguments):
                yield {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}

    def events(self, include_usage: bool) -> Iterator[str]:
        """The SSE `data:` payloads, ending with [DONE]."""
        base = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }
        extra = {"usage": None} if include_usage else {}
        for delta in self._deltas():
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
            yield json.dumps({**base, "choices": [choice], **extra})
        last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": self.finish}
        yield json.dumps({**base, "choices": [last], **extra})
        if include_usage:
            yield json.dumps({**base, "choices": [], "usage": self.usage()})
        yield "[DONE]"


def load_script(path: Path) -> list[Item]:
    """A JSON file holding a list of script items (turn dicts, strings or fault dicts)."""
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: the script must be a JSON list of turns or faults")
    return data


def main(argv: list[str] | None = None) -> int:
    """Serve a script file until SIGINT/SIGTERM; the port goes to stdout and, if asked, to --port-file."""
    parser = argparse.ArgumentParser(prog="python -m agent.llm.server", description=__doc__)
    parser.add_argument("--script", type=Path, required=True, help="JSON list of turns and faults")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument("--record", type=Path, help="append each request as a JSON line")
    parser.add_argument("--chunk-chars", type=int, default=6, help="characters per streamed delta")
    parser.add_argument("--timings", type=Path, help="append when each completion was received and answered")
    args = parser.parse_args(argv)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        script = load_script(args.script)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    with ScriptedServer(
        script, port=args.port, chunk_chars=args.chunk_chars, record=args.record, timings=args.timings
    ) as srv:
        if args.port_file:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(str(srv.port))
            os.replace(tmp, args.port_file)
        sys.stdout.write(f"{srv.port}\n")
        sys.stdout.flush()
        done.wait()
    return 0


__all__ = ["RecordedRequest", "ScriptedServer", "error_body", "load_script", "main"]

if __name__ == "__main__":
    sys.exit(main())
