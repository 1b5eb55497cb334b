"""A small renderer for the subset of Go's text/template that Ollama TEMPLATEs written by
`pml export` use: text, actions with `{{-`/`-}}` trimming, `range $i, $m := .X`, `if` /
`else` / `end`, `and`, `or`, `not`, `eq`, `ne`, field access (`.F`, `$m.F`, `$.F`),
variables and string literals. Written for the tests, so they need no Go."""

import re

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+')


def _lex(source: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    at = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[at:match.start()]
        if match.group(1):
            text = text.rstrip()
        if trim_next:
            text = text.lstrip()
        items.append(("text", text))
        items.append(("action", match.group(2).strip()))
        trim_next = bool(match.group(3))
        at = match.end()
    tail = source[at:]
    items.append(("text", tail.lstrip() if trim_next else tail))
    return items


def _parse(items, pos=0, stop=("end",)):
    """Nodes until one of `stop` actions; returns (nodes, pos of the stop, the stop action)."""
    nodes = []
    while pos < len(items):
        kind, value = items[pos]
        if kind == "text":
            nodes.append(("text", value))
            pos += 1
            continue
        word = value.split(" ", 1)[0]
        if word in stop or value.startswith("else"):
            return nodes, pos, value
        if word == "range":
            body, pos, _ = _parse(items, pos + 1)
            nodes.append(("range", value[len("range"):].strip(), body))
            pos += 1
        elif word == "if":
            branches, pos = _parse_if(items, value[3:].strip(), pos + 1)
            nodes.append(("if", branches))
        else:
            nodes.append(("expr", value))
            pos += 1
    return nodes, pos, None


def _parse_if(items, cond, pos):
    branches = []
    while True:
        body, pos, stop = _parse(items, pos)
        branches.append((cond, body))
        if stop == "end":
            return branches, pos + 1
        rest = stop[len("else"):].strip()
        cond = rest[len("if"):].strip() if rest.startswith("if") else "true"
        pos += 1


def _tokens(expr: str) -> list[str]:
    return _TOKEN.findall(expr)


def _eval_tokens(tokens: list[str], scope: dict):
    """Evaluate a pipeline-free command: a function call or a single operand."""
    values, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                j += 1
            values.append(("value", _eval_tokens(tokens[i + 1:j - 1], scope)))
            i = j
        else:
            values.append(("token", token))
            i += 1
    head = values[0]
    if head[0] == "token" and head[1] in _FUNCS:
        return _FUNCS[head[1]](*[_operand(v, scope) for v in values[1:]])
    assert len(values) == 1, tokens
    return _operand(head, scope)


def _operand(item, scope):
    kind, value = item
    if kind == "value":
        return value
    if value.startswith('"'):
        return bytes(value[1:-1], "utf-8").decode("unicode_escape")
    if value == "true":
        return True
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value.startswith("$"):
        name, _, path = value.partition(".")
        obj = scope["$"] if name == "$" else scope[name]
    else:
        obj, path = scope["."], value[1:]
    for part in filter(None, path.split(".")):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


_FUNCS = {
    "and": lambda *a: next((x for x in a if not x), a[-1]),
    "or": lambda *a: next((x for x in a if x), a[-1]),
    "not": lambda a: not a,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "len": len,
}


def _run(nodes, scope, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            value = _eval_tokens(_tokens(node[1]), scope)
            out.append(str(value))
        elif node[0] == "if":
            for cond, body in node[1]:
                if cond == "true" or _eval_tokens(_tokens(cond), scope):
                    _run(body, scope, out)
                    break
        elif node[0] == "range":
            header = node[1]
            names, _, source = header.rpartition(":=")
            items = _eval_tokens(_tokens(source.strip()), scope)
            variables = [n.strip() for n in names.split(",")] if names else []
            for index, item in enumerate(items):
                inner = {**scope, ".": item}
                if len(variables) == 2:
                    inner[variables[0]], inner[variables[1]] = index, item
                elif len(variables) == 1:
                    inner[variables[0]] = item
                _run(node[2], inner, out)


def render(source: str, data: dict) -> str:
    """`source` rendered with `data` as the dot (and `$`)."""
    nodes, pos, stop = _parse(_lex(source))
    assert stop is None, f"unexpected {{{{ {stop} }}}}"
    out: list[str] = []
    _run(nodes, {".": data, "$": data}, out)
    return "".join(out)
