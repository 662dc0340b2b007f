"""The README's curl examples, run as they are written against a real API
server, worker, PostgreSQL and Redis, with each response checked against the
JSON the README shows after it.

The convention, in README.md (any section, not only the API's):

    <!-- example: NAME -->          a unique name; `expect=STATUS` after it when
    ```bash                         the block's last curl is meant to fail
    curl -s localhost:8000/... -H "Authorization: Bearer $KEY"
    ```

    ```json                         optional: the response of the block's last curl
    {"id": "…", "status": "done", …}
    ```

- The HTML comment must be the line right above the ```bash fence; the ```json
  block may follow after blank lines. Other code blocks are not run.
- The runnable blocks of one section (a `#`, `##` or `###` heading up to the
  next one) run in order in one `bash -euo pipefail`, so a block may set a
  variable (`ID=$(curl ... | python3 -c ...)`) that a later one uses. Each
  section gets its own fresh database, API server and worker.
- The harness exports `KEY` (a tenant key from `ai-moderator apikey create`),
  its `CALLBACK_SECRET`, and `ADMIN_KEY` (`apikey create --admin`); it points
  `localhost:8000` and `https://moderation.example.com` at the test server and
  `https://hooks.example.com` at a callback receiver here, which checks that
  every delivery is signed with `CALLBACK_SECRET`.
- Every curl must answer below 400, except the last curl of an `expect=STATUS`
  block, which must answer STATUS.
- The JSON block is compared with the response by `mismatches`: `…` stands for
  left-out object members, list elements (at the end) or part of a string.
  An object without `…` must have exactly the keys shown, one with `…` at least
  those; a list without `…` exactly as many elements, one with `…` at least as
  many; each documented value must be of the same JSON type as the actual one
  (null, boolean, number, string, list, object). A string with `…` in it is a
  pattern (`"modr-…"`), and the values of the keys in STABLE_KEYS must be equal
  (`"status": "done"`); other values (ids, timestamps, scores) are not compared.

`pytest -rP` shows each block's output, to paste real responses into the README.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from ai_moderator_workload.callbacks import verify
from servers import ROOT, Receiver, api_server, callback_receiver, fresh_database, run_cli, worker_process

README = ROOT / "README.md"
ELLIPSIS = "…"
# Documented values of these keys must equal the actual ones; others are compared by type only.
STABLE_KEYS = frozenset({"status", "flagged", "decided_by", "verdict", "action", "outcome", "external_id",
                         "code", "param", "type"})
API_HOSTS = ("https://moderation.example.com", "http://localhost:8000", "localhost:8000")
HOOK_HOST = "https://hooks.example.com"
SCRIPT_TIMEOUT_SECONDS = 60
_MARKER = re.compile(r"<!--\s*example:\s*(?P<name>[A-Za-z0-9_.-]+)(?P<options>(?:\s+[a-z]+=\S+)*)\s*-->")
_HEADING = re.compile(r"(#{1,3})\s+(?P<title>.+?)\s*#*\s*")


# --- The README's examples ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    name: str
    line: int  # of the ```bash fence, 1-based
    script: str
    expect: int | None = None  # the status the last curl must answer; None: every curl below 400
    documented: str | None = None  # the ```json block after it
    documented_line: int | None = None


@dataclass(frozen=True)
class Section:
    title: str
    line: int
    examples: tuple[Example, ...]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def _fence_end(lines: list[str], start: int) -> int:
    """The index of the line that closes the fence opened at `start`."""
    for i in range(start + 1, len(lines)):
        if lines[i].strip() == "```":
            return i
    raise ValueError(f"line {start + 1}: the code block is never closed")


def parse_readme(text: str) -> tuple[list[Section], list[str]]:
    """The sections that have runnable examples, and what is malformed
    (a marker not right above a ```bash block, an unknown option, a name used
    twice)."""
    lines = text.splitlines()
    sections: list[Section] = []
    problems: list[str] = []
    names: set[str] = set()
    title, title_line = "(top)", 1
    examples: list[Example] = []

    def close() -> None:
        if examples:
            sections.append(Section(title, title_line, tuple(examples)))

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            i = _fence_end(lines, i) + 1
            continue
        if line.lstrip().startswith("<!--") and "-->" not in line:  # a comment of several lines: no heading in it
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        if heading := _HEADING.fullmatch(line):
            close()
            title, title_line, examples = heading["title"], i + 1, []
        elif "<!--" in line and re.search(r"<!--\s*example\b", line):
            marker = _MARKER.fullmatch(line.strip())
            if marker is None:
                problems.append(f"line {i + 1}: malformed example marker {line.strip()!r}")
            elif i + 1 >= len(lines) or lines[i + 1].strip() != "```bash":
                problems.append(f"line {i + 1}: example {marker['name']!r} is not right above a ```bash block")
            else:
                options = dict(o.split("=", 1) for o in marker["options"].split())
                expect = None
                if set(options) - {"expect"}:
                    problems.append(f"line {i + 1}: unknown option in {line.strip()!r} (only expect=STATUS)")
                if "expect" in options:
                    if not re.fullmatch(r"[1-5][0-9][0-9]", options["expect"]):
                        problems.append(f"line {i + 1}: expect= takes an HTTP status, not {options['expect']!r}")
                    else:
                        expect = int(options["expect"])
                if marker["name"] in names:
                    problems.append(f"line {i + 1}: a second example named {marker['name']!r}")
                names.add(marker["name"])
                end = _fence_end(lines, i + 1)
                script = "\n".join(lines[i + 2:end])
                j = end + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                documented = documented_line = None
                if j < len(lines) and lines[j].strip() == "```json":
                    json_end = _fence_end(lines, j)
                    documented, documented_line = "\n".join(lines[j + 1:json_end]), j + 2
                    try:
                        parse_documented(documented)
                    except ValueError as exc:
                        problems.append(f"line {j + 2}: the JSON after example {marker['name']!r} "
                                        f"does not parse: {exc}")
                    end = json_end
                examples.append(Example(marker["name"], i + 2, script, expect, documented, documented_line))
                i = end + 1
                continue
        i += 1
    close()
    return sections, problems


# --- Documented JSON against actual JSON -------------------------------------------------------------------------

class _More:
    """Where the README wrote `…` in an object or a list: more of it exists."""


MORE_KEY = "\0…"  # the key a `…` member becomes in a documented object


def parse_documented(text: str) -> Any:
    """The README's JSON with its `…` placeholders: `…` inside a string stays
    (a pattern); a bare `…` becomes the member MORE_KEY in an object, the
    element MORE_KEY in a list, and the value MORE_KEY (any value) after a key."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    for c in text:
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c in "{[":
            stack.append(c)
            out.append(c)
        elif c in "}]":
            if stack:
                stack.pop()
            out.append(c)
        elif c == ELLIPSIS:
            member = stack and stack[-1] == "{" and "".join(out).rstrip()[-1:] != ":"
            out.append(json.dumps(MORE_KEY) + (": null" if member else ""))
        else:
            out.append(c)
    try:
        return json.loads("".join(out), object_pairs_hook=dict)
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _show(value: Any) -> str:
    """A value for a message: its kind and (the start of) its JSON, with `…` as the README wrote it."""
    text = json.dumps(value, ensure_ascii=False).replace(f'{json.dumps(MORE_KEY, ensure_ascii=False)}: null', ELLIPSIS)
    text = text.replace(json.dumps(MORE_KEY, ensure_ascii=False), ELLIPSIS)
    return "null" if value is None else f"{_kind(value)} {text if len(text) <= 80 else text[:77] + '...'}"


def _pattern(documented: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in documented.split(ELLIPSIS)), re.DOTALL)


def mismatches(documented: Any, actual: Any, path: str = "$", key: str | None = None) -> list[str]:
    """Where the actual JSON differs from the README's (parsed by
    parse_documented), one line each; empty when it matches."""
    if documented == MORE_KEY:
        return []
    if _kind(documented) != _kind(actual):
        return [f"{path}: the README shows {_show(documented)}, the response has {_show(actual)}"]
    if isinstance(documented, dict):
        found: list[str] = []
        shown = {k: v for k, v in documented.items() if k != MORE_KEY}
        found += [f"{path}.{k}: shown in the README, missing from the response" for k in shown if k not in actual]
        if MORE_KEY not in documented:
            found += [f"{path}.{k}: in the response but not in the README (add it, or `…`)"
                      for k in actual if k not in shown]
        for k, v in shown.items():
            if k in actual:
                found += mismatches(v, actual[k], f"{path}.{k}", k)
        return found
    if isinstance(documented, list):
        shown_items = [v for v in documented if v != MORE_KEY]
        if len(actual) < len(shown_items) or (MORE_KEY not in documented and len(actual) != len(shown_items)):
            return [f"{path}: the README shows {len(shown_items)} element(s)"
                    f"{' and more' if MORE_KEY in documented else ''}, the response has {len(actual)}"]
        return [m for i, v in enumerate(shown_items) for m in mismatches(v, actual[i], f"{path}[{i}]", key)]
    if isinstance(documented, str) and ELLIPSIS in documented:
        if not _pattern(documented).fullmatch(actual):
            return [f"{path}: {actual!r} does not match the README's {documented!r}"]
    elif key in STABLE_KEYS and documented != actual:
        return [f"{path}: the README shows {json.dumps(documented)}, the response has {json.dumps(actual)}"]
    return []


# --- Running a section -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stack:
    base: str
    tenant: dict[str, Any]
    admin: dict[str, Any]


def create_key(env: dict[str, str], name: str, *flags: str) -> dict[str, Any]:
    return dict(json.loads(run_cli("apikey", "create", "--name", name, *flags, env=env).stdout))


@contextmanager
def stack(base_env: dict[str, str], tmp: Path) -> Iterator[Stack]:
    """A fresh database with a tenant and an admin key, an API server and a
    worker on it, for one section."""
    redis.Redis.from_url(base_env["REDIS_URL"]).flushdb()
    with fresh_database() as db_url:
        env = {**base_env, "DATABASE_URL": db_url}
        run_cli("migrate", env=env)
        with ThreadPoolExecutor(2) as pool:
            tenant = pool.submit(create_key, env, "readme-tenant")
            admin = pool.submit(create_key, env, "readme-admin", "--admin")
            # The worker first: it loads the model while the API server starts.
            with worker_process(env, tmp), api_server(env, tmp) as base:
                yield Stack(base, tenant.result(), admin.result())


# `curl` as the examples call it: the real one, with each call's status, method, URL and body kept in
# $README_CALLS (a line of the log per call, tagged with the block that made it), and the body printed.
PRELUDE = r"""
curl() {
  local body status rc
  body=$(mktemp "$README_CALLS/body.XXXXXX")
  status=$(command curl "$@" --output "$body" --write-out '%{http_code} %{method} %{url_effective}') && rc=0 || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$README_BLOCK" "$body" "$rc" "$status" >> "$README_CALLS/log"
  cat "$body"
  return "$rc"
}
export -f curl
"""


@dataclass(frozen=True)
class Call:
    block: int
    status: int
    request: str  # method and URL
    body: str
    exit_code: int


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: dict[int, str]  # by block
    stderr: str
    calls: list[Call]

    def of(self, block: int) -> list[Call]:
        return [c for c in self.calls if c.block == block]


def _marker(i: int) -> str:
    return f"@@readme-example {i}@@"


def rewrite(script: str, api: str, hook: str) -> str:
    """The example pointed at the test servers."""
    for host in API_HOSTS:
        script = script.replace(host, api)
    return script.replace(HOOK_HOST, hook)


def run_section(section: Section, api: str, hook: str, env: dict[str, str], tmp: Path) -> Run:
    calls_dir = tmp / "calls"
    calls_dir.mkdir()
    parts = [PRELUDE]
    for i, example in enumerate(section.examples):
        parts.append(f"README_BLOCK={i}\nprintf '\\n%s\\n' '{_marker(i)}'\n{rewrite(example.script, api, hook)}\n")
    script = tmp / "section.sh"
    script.write_text("".join(parts))
    bin_dir = str(ROOT / ".venv" / "bin")
    proc = subprocess.Popen(["bash", "-euo", "pipefail", str(script)], cwd=tmp, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **env, "README_CALLS": str(calls_dir), "README_BLOCK": "",
                                 "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    try:
        out, err = proc.communicate(timeout=SCRIPT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {SCRIPT_TIMEOUT_SECONDS} s)"
    stdout: dict[int, str] = {}
    block = -1
    for line in out.replace(hook, HOOK_HOST).splitlines(keepends=True):
        match = re.fullmatch(r"@@readme-example (\d+)@@\n?", line)
        if match:
            block = int(match[1])
            stdout[block] = ""
        elif block >= 0:
            stdout[block] += line
    calls = []
    log = calls_dir / "log"
    for line in log.read_text().splitlines() if log.exists() else []:
        index, body, rc, status = line.split("\t", 3)
        code, _, request = status.partition(" ")
        text = Path(body).read_text(errors="replace").replace(hook, HOOK_HOST)
        calls.append(Call(int(index), int(code or 0), request, text, int(rc)))
    return Run(proc.returncode, stdout, err, calls)


def failures(section: Section, run: Run) -> list[str]:
    """What went wrong in a section's run, first failure first (an unexpected
    status explains a failed script better than the script's exit code)."""
    def where(i: int) -> str:
        ex = section.examples[i]
        return f"example {ex.name!r} (README.md line {ex.line})"

    for i, example in enumerate(section.examples):
        calls = run.of(i)
        for n, call in enumerate(calls):
            expected = example.expect if example.expect is not None and n == len(calls) - 1 else None
            if call.exit_code != 0 and call.status == 0:
                return [f"{where(i)}: curl exited {call.exit_code} on {call.request or 'its request'}"]
            if expected is not None and call.status != expected:
                return [f"{where(i)}: {call.request} answered {call.status}, the README expects {expected}:\n"
                        f"{call.body}"]
            if expected is None and call.status >= 400:
                return [f"{where(i)}: {call.request} answered {call.status}"
                        f"{'' if example.expect is None else ' before the last curl'}:\n{call.body}"]
        if example.expect is not None and not calls:
            return [f"{where(i)}: expect={example.expect}, but the block ran no curl"]
    if run.returncode != 0:
        ran = max(run.stdout, default=-1)
        return [f"the section's script exited {run.returncode} in {where(max(ran, 0))}:\n{run.stderr}\n"
                f"output:\n{run.stdout.get(ran, '')}"]
    found: list[str] = []
    for i, example in enumerate(section.examples):
        if example.documented is None:
            continue
        calls = run.of(i)
        if not calls:
            found.append(f"{where(i)}: a JSON response is documented (line {example.documented_line}), "
                         f"but the block ran no curl")
            continue
        try:
            actual = json.loads(calls[-1].body)
        except json.JSONDecodeError:
            found.append(f"{where(i)}: the last response is not JSON:\n{calls[-1].body}")
            continue
        found += [f"{where(i)}, JSON at line {example.documented_line}: {m}"
                  for m in mismatches(parse_documented(example.documented), actual)]
    return found


SECTIONS, PROBLEMS = parse_readme(README.read_text())


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with callback_receiver() as r:
        yield r


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("section", SECTIONS, ids=[s.slug for s in SECTIONS])
def test_the_readme_examples_answer_what_the_readme_shows(section: Section, pg_env: dict[str, str], hook: Receiver,
                                                          tmp_path: Path) -> None:
    env = {**pg_env, "CALLBACK_ALLOW_PRIVATE": "true", "CALLBACK_TIMEOUT_SECONDS": "5"}
    with hook.lock:
        hook.seen.clear()
    with stack(env, tmp_path) as s:
        shell_env = {"KEY": str(s.tenant["key"]), "CALLBACK_SECRET": str(s.tenant["callback_secret"]),
                     "ADMIN_KEY": str(s.admin["key"])}
        run = run_section(section, s.base, hook.base, shell_env, tmp_path)
    for i, example in enumerate(section.examples):
        print(f"--- {example.name} (README.md line {example.line})\n{run.stdout.get(i, '').strip()}")
    problems = failures(section, run)
    assert not problems, f"README.md section {section.title!r} (line {section.line}):\n" + "\n".join(problems)
    with hook.lock:
        unsigned = [d.path for d in hook.seen
                    if not verify(shell_env["CALLBACK_SECRET"], d.signature, d.body) or not d.delivery_id]
    assert not unsigned, f"callbacks without a valid signature or delivery id: {unsigned}"


def test_the_readme_examples_are_well_formed() -> None:
    assert SECTIONS, "README.md has no runnable examples"
    assert not PROBLEMS, "\n".join(PROBLEMS)


# Each workflow the API section documents has a runnable example calling it.
WORKFLOWS = {
    "synchronous moderation": r"/api/v1/moderate\b",
    "OpenAI-compatible moderation": r"/v1/moderations\b",
    "asynchronous submission": r"/api/v1/content\s",
    "lookup by id": r"/api/v1/content/\$\w+\s",
    "lookup by external_id": r"/api/v1/content\?external_id=",
    "callbacks": r'"callback_url": "https://hooks\.example\.com/',
    "feedback": r"/api/v1/content/\$\w+/feedback\b",
    "the review queue": r"/api/v1/review\?",
    "a review": r"/api/v1/review/\$\w+",
    "the audit log": r"/api/v1/audit\b",
    "blocklists": r"/api/v1/blocklists/[\w-]+/items\b",
    "blocklists named by a request": r'"blocklists": \[',
    "tenant policies": r"/api/v1/policies/",
    "binding a key to a policy": r"/api/v1/keys/",
}


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_api_workflow_has_a_runnable_example(workflow: str) -> None:
    scripts = "\n".join(e.script for s in SECTIONS for e in s.examples)
    assert re.search(WORKFLOWS[workflow], scripts), f"no runnable README example for {workflow}"


# --- The checks themselves ---------------------------------------------------------------------------------------

ITEM = {"id": "b1c8", "status": "done", "attempts": 1, "created_at": "2026-11-27T01:37:45+00:00",
        "result": {"flagged": True, "categories": ["harassment"], "category_scores": {"harassment": 0.99, "hate": 0.1}},
        "decided_by": "model", "review": None}


def check(documented: str, actual: Any = ITEM) -> list[str]:
    return mismatches(parse_documented(documented), actual)


def test_a_matching_response_passes() -> None:
    assert check('{"id": "…", "status": "done", "attempts": 3, "created_at": "2026-01-01T00:00:00+00:00", '
                 '"result": {"flagged": true, "categories": ["violence"], "category_scores": {"harassment": 0.5, …}},'
                 ' "decided_by": "model", "review": null}') == []
    assert check('{"status": "done", …, "result": {…}}') == []
    assert check('{"items": [{"id": 1, …}, …], …}', {"items": [{"id": 2, "x": 0}, {"id": 3}], "next": None}) == []


@pytest.mark.parametrize(("documented", "complaint"), [
    ('{"status": "done", "verdict": "correct", …}', "$.verdict: shown in the README, missing from the response"),
    ('{"status": "done", "result": {"flaged": true, …}, …}', "$.result.flaged: shown in the README, missing"),
    ('{"status": "pending", …}', '$.status: the README shows "pending", the response has "done"'),
    ('{"result": {"flagged": false, …}, …}', "$.result.flagged: the README shows false"),
    ('{"review": {"note": "…"}, …}', "$.review: the README shows object"),
    ('{"attempts": "1", …}', "$.attempts: the README shows string"),
    ('{"id": "modr-…", …}', "$.id: 'b1c8' does not match the README's 'modr-…'"),
    ('{"id": "…", "status": "done"}', "$.attempts: in the response but not in the README"),
    ('{"result": {"categories": [], …}, …}', "$.result.categories: the README shows 0 element(s)"),
    ('{"result": {"categories": ["harassment", "hate", …], …}, …}', "the README shows 2 element(s) and more"),
])
def test_a_response_that_differs_from_the_readme_fails(documented: str, complaint: str) -> None:
    found = check(documented)
    assert any(complaint in f for f in found), found


def test_ellipses_are_read_where_json_allows_them_and_kept_in_strings() -> None:
    parsed = parse_documented('{"a": [1, …], "b": {…}, "c": "x…y", …, "d": "a,}\\"…", "e": …}')
    assert parsed == {"a": [1, MORE_KEY], "b": {MORE_KEY: None}, "c": "x…y", MORE_KEY: None, "d": 'a,}"…',
                      "e": MORE_KEY}
    assert check('{"result": …, …}') == []
    with pytest.raises(ValueError):
        parse_documented('{"a": 1 "b": 2}')


def test_the_parser_finds_sections_examples_and_mistakes() -> None:
    text = "\n".join([
        "### One", "<!-- example: a -->", "```bash", "A=1", "```", "", "```json", '{"x": …}', "```",
        "```bash", "# not run", "```",
        "## Two", "<!-- example: b expect=422 -->", "```bash", "curl x", "```", "text", "```json", "{}", "```",
        "<!-- example: a -->", "```bash", "true", "```",
        "<!-- example: c -->", "", "```bash", "true", "```",
        "<!-- example: d expect=teapot -->", "```bash", "true", "```",
        "### Three has nothing to run",
    ])
    sections, problems = parse_readme(text)
    assert [(s.title, [e.name for e in s.examples]) for s in sections] == [("One", ["a"]), ("Two", ["b", "a", "d"])]
    one, two = sections[0].examples[0], sections[1].examples[0]
    assert (one.script, one.documented, one.expect, one.line) == ("A=1", '{"x": …}', None, 3)
    assert (two.script, two.documented, two.expect) == ("curl x", None, 422)
    assert problems == ["line 22: a second example named 'a'",
                        "line 26: example 'c' is not right above a ```bash block",
                        "line 31: expect= takes an HTTP status, not 'teapot'"]


def test_statuses_are_checked_against_expect() -> None:
    section = Section("S", 1, (Example("ok", 3, "curl a"), Example("refused", 9, "curl b", expect=403,
                                                                    documented='{"error": {"code": "x", …}}')))

    def run(*statuses: tuple[int, int, str]) -> list[str]:
        return failures(section, Run(0, {}, "", [Call(block, status, f"GET /{block}", body, 0)
                                                 for block, status, body in statuses]))

    assert run((0, 200, "{}"), (1, 403, '{"error": {"code": "x"}}')) == []
    assert "example 'ok' (README.md line 3): GET /0 answered 404" in run((0, 404, "{}"), (1, 403, "{}"))[0]
    assert "answered 200, the README expects 403" in run((0, 200, "{}"), (1, 200, "{}"))[0]
    assert "answered 500 before the last curl" in run((0, 200, "{}"), (1, 500, "{}"), (1, 403, "{}"))[0]
    assert "$.error.code: the README shows \"x\"" in run((0, 200, "{}"), (1, 403, '{"error": {"code": "y"}}'))[0]
    assert "expect=403, but the block ran no curl" in run((0, 200, "{}"))[0]
