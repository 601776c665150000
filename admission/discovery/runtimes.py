"""The serving runtimes and model loaders mlbom recognises, and what each one loads.

Each reader takes one `Invocation` (a program with its argv and environment) and says
whether it is that runtime, and if so every model it loads (the served model, and what
else it reads as weights: tokenizers, draft models, adapters, configs from the Hub), with
the revision the runtime uses for each, read as that runtime reads its options and its
variables. What the runtime could read otherwise, what comes from a place the webhook
cannot see, and what redirects where the bytes come from are problems.

A recognised runtime that names no model still loads one (its built-in default, or
whatever a request asks for): that is a problem too, never "no model".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from admission.discovery.commandline import Invocation
from admission.discovery.environment import Env, is_unknown
from admission.discovery.findings import Code, Role
from admission.discovery.options import Options, Parsed, parse
from admission.discovery.tables import (
    HUB_DOWNLOAD,
    HUGGINGFACESERVER,
    LLAMA_CPP,
    LMDEPLOY,
    MLBOM_VERIFY_LOAD,
    SGLANG,
    TEI,
    TGI,
    TRITON,
    VLLM,
    VLLM_API_SERVER,
)
from admission.discovery.untrusted import MAX_ITEMS, MAX_TEXT

ANNOTATION = "mlbom.dev/model"
HUB = "https://huggingface.co"
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})


@dataclass(frozen=True)
class Named:
    """A model a program names: the value, where, and the revision it is read at."""

    value: str
    how: str
    revision: str | None = None
    pin: str | None = None  # how to name the commit there
    uri: bool = False  # a URI (storage URIs): a bare ORG/REPO here is not a Hub id
    path: bool = False  # always a file or folder (llama.cpp's --model), never a Hub id


@dataclass
class Reading:
    """What one program loads."""

    runtime: str
    role: Role
    named: list[Named] = field(default_factory=list)
    problems: list[tuple[Code, str]] = field(default_factory=list)
    cache_dirs: list[str] = field(default_factory=list)  # where it keeps downloads
    # caches its own options or variables name, which win over HF_HUB_CACHE
    own_caches: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # folders a loader fills
    unknown: dict[str, str] = field(
        default_factory=dict
    )  # variables it reads that the webhook cannot see
    cwd: str | None = None  # a shell line's `cd`: where relative names are looked up

    def problem(self, code: Code, message: str) -> None:
        self.problems.append((code, message))


@dataclass(frozen=True)
class Sources:
    """Where the policy lets bytes come from (the policy's `sources`)."""

    hub_endpoints: tuple[str, ...] = (HUB,)
    runtime_loading: bool = False  # adapters or models loaded through a server's API
    shared_caches: bool = False  # a Hugging Face cache that something else may have filled


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def image_repository(image: str) -> str:
    """The repository path without registry host, tag or digest: ``vllm/vllm-openai``."""
    path = image.split("@", 1)[0]
    first, slash, rest = path.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        path = rest
    last = path.rsplit("/", 1)[-1]
    return (path.rsplit(":", 1)[0] if ":" in last else path).lower()


# -- program recognition: argv[0], python -m, the image's entrypoint ----------------------

# Images whose entrypoint runs a server: a container with args only runs these.
_ENTRYPOINTS: tuple[tuple[re.Pattern[str], list[str]], ...] = (
    (
        re.compile(r"(^|/)vllm-openai(-\w+)?$|(^|/)vllm-tpu$|^rocm/vllm|vllm-cpu-release-repo$"),
        ["vllm", "serve"],
    ),
    (re.compile(r"text-generation-inference|-tgi-inference"), ["text-generation-launcher"]),
    (re.compile(r"text-embeddings-inference|-tei(-cpu)?-inference"), ["text-embeddings-router"]),
    (re.compile(r"huggingfaceserver$"), ["python", "-m", "huggingfaceserver"]),
    *(
        (re.compile(rf"(^|/){name}$"), ["python", "-m", name])
        for name in ("sklearnserver", "xgbserver", "lgbserver", "pmmlserver", "paddleserver")
    ),
    (re.compile(r"(^|/)ollama$"), ["ollama"]),  # its CMD is serve
    (re.compile(r"llama\.cpp$"), ["/app/llama-server"]),
    (re.compile(r"local-ai$|(^|/)localai$"), ["local-ai", "run"]),
    (re.compile(r"(^|/)storage-initializer$"), ["storage-initializer"]),
    (re.compile(r"(^|/)aws-cli$"), ["aws"]),
    (re.compile(r"(^|/)curl$"), ["curl"]),
    (re.compile(r"(^|/)git$"), ["git"]),
    (re.compile(r"tritonserver$"), []),  # nvidia_entrypoint.sh runs its arguments
    (re.compile(r"^nim/"), ["nim-server"]),
    (re.compile(r"inference-toolkit|huggingface-pytorch-inference"), ["hf-inference-toolkit"]),
)


# Working directories of the images whose servers read relative names as folders first.
_WORKDIRS = (
    (re.compile(r"vllm-openai|(^|/)vllm-tpu$|^rocm/vllm|vllm-cpu-release-repo"), "/vllm-workspace"),
    (re.compile(r"(^|/)sglang$"), "/sgl-workspace"),
    (re.compile(r"text-generation-inference|text-embeddings-inference"), "/usr/src"),
    (re.compile(r"(^|/)lmdeploy$"), "/opt/lmdeploy"),
)


def workdir(image: str) -> str:
    """The image's working directory where mlbom knows it, else the default, /."""
    repository = image_repository(image)
    return next((path for pattern, path in _WORKDIRS if pattern.search(repository)), "/")


def entrypoint(image: str) -> list[str] | None:
    """What the image runs before its args, where mlbom knows the image; None otherwise."""
    repository = image_repository(image)
    if "nvcr.io/nim/" in image.lower():
        return ["nim-server"]
    for pattern, words in _ENTRYPOINTS:
        if pattern.search(repository):
            return list(words)
    return None


_PYTHON_FLAGS = frozenset("bBdEhiIOPqRsSuvV")


def _python(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``python [options] -m MODULE ARGS``: (module, args); (None, [script, args…]) for a
    script, (None, ["-c", code, …]) for code; options read as CPython reads them, combined
    short options (``-um``, ``-Bm``) included."""
    if not re.match(r"^python(\d+(\.\d+)?)?$", _base(argv[0])):
        return None
    i = 1
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        word = argv[i]
        if word == "--":
            return None, argv[i + 1 :]
        if word.startswith("--"):
            i += 2 if word == "--check-hash-based-pycs" else 1
            continue
        for j, flag in enumerate(word[1:], 1):
            if flag in "mcWX":
                rest = word[j + 1 :]
                value, after = (rest, i + 1) if rest else (argv[i + 1] if i + 1 < len(argv) else "", i + 2)  # fmt: skip
                if flag == "m":
                    return value, argv[after:]
                if flag == "c":
                    return None, ["-c", value, *argv[after:]]
                i = after
                break
            if flag not in _PYTHON_FLAGS:
                return None, argv[i:]
        else:
            i += 1
    return None, argv[i:]


def ray_llm(app: str, config: dict[str, Any], env_vars: dict[str, Any], sources: Sources) -> Reading:  # fmt: skip
    """One Ray Serve LLM config: its model, and its ``engine_kwargs`` read as the vLLM engine
    options they are (tokenizer, draft model, adapters, load format …), its LoRA loading
    and its runtime environment."""
    reading = Reading(f"Ray Serve LLM application {app}", "inference")
    loading = config.get("model_loading_config")
    loading = loading if isinstance(loading, dict) else {}
    source = loading.get("model_source") or loading.get("model_id")
    uri = isinstance(source, dict)
    if isinstance(source, dict):
        source = source.get("bucket_uri")
    engine = config.get("engine_kwargs")
    words: list[str] = []
    for key, value in (engine if isinstance(engine, dict) else {}).items():
        option = "--" + str(key).replace("_", "-")
        if value is True:
            words.append(option)
        elif value is not False and value is not None:
            words += [
                option,
                value if isinstance(value, str) else msgspec.json.encode(value).decode(),
            ]
    parsed = _parsed(reading, words, VLLM_API_SERVER)
    revision = _one(parsed, "revision")
    if isinstance(source, str) and source:
        reading.named.append(Named(source, "model_loading_config", revision, "Ray Serve LLM: engine_kwargs.revision: <commit>", uri=uri))  # fmt: skip
    else:
        reading.problem("no-model", "the config names no model_loading_config.model_source")
    _vllm_loads(reading, parsed, source if isinstance(source, str) else None, revision)
    _loading_options(reading, parsed, "Ray Serve LLM")
    lora = config.get("lora_config")
    if isinstance(lora, dict) and lora.get("dynamic_lora_loading_path"):
        _runtime_loading(reading, "lora_config.dynamic_lora_loading_path", sources, "serve the adapters as models of their own")  # fmt: skip
    env = Env()
    for name, value in list(env_vars.items())[:MAX_ITEMS]:
        env.set(str(name), str(value))
    _hub_sources(reading, env, sources, ("VLLM_USE_MODELSCOPE",))
    _injection(reading, env)
    return reading


def python_parts(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """`argv` read as CPython reads it: (module, args) for ``-m``, (None, [script, …]) for a
    script; None when it is not Python."""
    return _python(argv) if argv else None


def _as_program(argv: list[str], module: str, program: str) -> list[str]:
    """``python -m MODULE ARGS`` read as ``PROGRAM ARGS``."""
    python = _python(argv)
    return [program, *python[1]] if python and python[0] == module else argv


# -- readers ------------------------------------------------------------------------------


def _parsed(reading: Reading, words: list[str], options: Options) -> Parsed:
    parsed = parse(words, options)
    for ambiguity in parsed.ambiguities:
        reading.problem("ambiguous", ambiguity)
    if parsed.unknown:
        reading.problem(
            "unknown-value",
            f"{', '.join(dict.fromkeys(parsed.unknown))}: the command line holds a value from a "
            "ConfigMap, Secret or the Downward API that may name the model or an option; write "
            "the model and its revision as literal arguments",
        )
    return parsed


def _env(reading: Reading, env: Env, name: str) -> str | None:
    """A variable the runtime reads; one the webhook cannot see is noted (`read` makes one
    problem of all of them)."""
    value = env.get(name)
    if value is not None and is_unknown(value):
        reading.unknown[name] = env.origin(name)
        return None
    return value


# Variables that let other code or other bytes in, whatever the runtime: refused where set.
_INJECTION = {
    "PYTHONPATH": "puts other Python code in front of the server's",
    "PYTHONHOME": "runs another Python installation",
    "PYTHONSTARTUP": "runs a file at start-up",
    "LD_PRELOAD": "loads other native code into the server",
    "LD_AUDIT": "loads other native code into the server",
    "REQUESTS_CA_BUNDLE": "trusts another certificate authority for downloads",
    "SSL_CERT_FILE": "trusts another certificate authority for downloads",
    "SSL_CERT_DIR": "trusts other certificate authorities for downloads",
    "CURL_CA_BUNDLE": "trusts another certificate authority for downloads",
    "VLLM_MODEL_REDIRECT_PATH": "makes vLLM load another model than the one named",
    "VLLM_LOGGING_CONFIG_PATH": "builds the logging from a file, whose factories can run code",
    "SGLANG_LOGGING_CONFIG_PATH": "builds the logging from a file, whose factories can run code",
    "BASH_ENV": "makes bash run a file first",
}


def _injection(reading: Reading, env: Env) -> None:
    for name, what in _INJECTION.items():
        if _env(reading, env, name) is not None:
            reading.problem(
                "byte-source", f"{name} {what}: remove it from the container's environment"
            )


def _hub_sources(
    reading: Reading,
    env: Env,
    sources: Sources,
    modelscope: Iterable[str] = (),
    cache: str | None = None,
) -> None:
    """Variables that send Hub downloads elsewhere, for every runtime that downloads from it."""
    endpoint = _env(reading, env, "HF_ENDPOINT")
    if endpoint and endpoint.rstrip("/") not in {e.rstrip("/") for e in sources.hub_endpoints}:
        reading.problem(
            "byte-source",
            f"HF_ENDPOINT={endpoint} downloads the model from another hub than the policy's "
            f"({', '.join(sources.hub_endpoints)}): remove it, or list it under sources.hubEndpoints",
        )
    for name in modelscope:
        if _truthy(_env(reading, env, name)):
            reading.problem(
                "byte-source",
                f"{name} downloads the model from ModelScope, which mlbom cannot check: "
                "serve it from the Hub at a commit, or from an OCI image by digest",
            )
    offline = [_env(reading, env, name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")]
    if any(_truthy(v) for v in offline) and not sources.shared_caches:
        reading.problem(
            "offline-cache",
            "HF_HUB_OFFLINE serves the model from a cache that something else filled, which "
            "mlbom cannot check: let the server download the pinned commit, or set "
            "sources.sharedCaches: allow in the policy where load-time verification binds the cache",
        )
    reading.cache_dirs += hub_caches(reading, env, cache)


_CACHE_VARIABLES = (
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "PYTORCH_TRANSFORMERS_CACHE",
    "PYTORCH_PRETRAINED_BERT_CACHE", "HF_DATASETS_CACHE", "HF_MODULES_CACHE", "SENTENCE_TRANSFORMERS_HOME",
)  # fmt: skip


def hub_caches(reading: Reading, env: Env, default: str | None = None) -> list[str]:
    """Every folder the Hub client, transformers and their kin read before they download:
    each cache variable that is set (expanded as they expand it: ``~``, ``$VAR``), and the
    default under HF_HOME; `default` is the image's own (TGI's /data)."""
    found = [v for name in _CACHE_VARIABLES if (v := _env(reading, env, name))]
    home = _env(reading, env, "HF_HOME")
    if not home:
        cache = _env(reading, env, "XDG_CACHE_HOME") or "~/.cache"
        home = f"{cache}/huggingface"
    found += [default] if default else []
    found.append(f"{home}/hub")
    return [_expand_path(reading, env, p) for p in dict.fromkeys(found)]


def _expand_path(reading: Reading, env: Env, path: str) -> str:
    """``os.path.expandvars`` and ``expanduser`` as Python applies them to these variables."""

    def one(m: re.Match[str]) -> str:
        value = _env(reading, env, m[1] or m[2])
        return m[0] if value is None else value

    path = re.sub(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", one, path)
    if path == "~" or path.startswith("~/"):
        path = (_env(reading, env, "HOME") or "/root") + path[1:]
    return path


def _runtime_loading(reading: Reading, what: str, sources: Sources, fix: str) -> None:
    if not sources.runtime_loading:
        reading.problem(
            "byte-source",
            f"{what} loads models at run time, outside admission: {fix}, or set "
            "sources.runtimeLoading: allow in the policy",
        )


def _one(parsed: Parsed, key: str) -> str | None:
    found = parsed.value(key)
    return found[1] if found else None


def _json_object(reading: Reading, text: str | None, option: str) -> dict[str, object]:
    if not text:
        return {}
    if len(text) > MAX_TEXT:
        reading.problem("scan-limit", f"{option} is longer than {MAX_TEXT} characters, more than mlbom reads: shorten it")  # fmt: skip
        return {}
    try:
        value = msgspec.json.decode(text)
    except RecursionError:
        reading.problem("scan-limit", f"{option} is nested deeper than mlbom reads: flatten it")
        return {}
    except msgspec.DecodeError:
        reading.problem("ambiguous", f"{option} is not JSON mlbom can read ({text[:80]!r}): write it as a JSON object")  # fmt: skip
        return {}
    return value if isinstance(value, dict) else {}


def _vllm(inv: Invocation, sources: Sources) -> Reading | None:
    argv = inv.argv
    python = _python(argv)
    if _base(argv[0]) == "vllm" and len(argv) > 1 and argv[1] == "serve":
        words, options = argv[2:], VLLM
    elif python and python[0] and python[0].startswith("vllm.entrypoints"):
        words, options = python[1], VLLM_API_SERVER
    elif python and python[0] == "vllm.entrypoints.cli.main" and python[1][:1] == ["serve"]:
        words, options = python[1][1:], VLLM
    else:
        return None
    reading = Reading("vLLM", "inference")
    extra = inv.env.get("VLLM_ADDITIONAL_ARGS")  # appended by the production-stack images
    if extra is not None and is_unknown(extra):
        _env(reading, inv.env, "VLLM_ADDITIONAL_ARGS")
    elif extra:
        words = [*words, *extra.split()]
    parsed = _parsed(reading, words, options)
    revision = _one(parsed, "revision")
    pin = "vLLM: --revision <commit>"
    model = parsed.positionals[0] if parsed.positionals else _one(parsed, "model")
    how = "vllm serve argument" if parsed.positionals else "--model"
    if model:
        reading.named.append(Named(model, how, revision, pin))
    else:
        reading.problem("no-model", "vLLM serves its built-in default model when none is named: name the model and its --revision")  # fmt: skip
    _vllm_loads(reading, parsed, model, revision)
    _hub_sources(reading, inv.env, sources, ("VLLM_USE_MODELSCOPE",))
    if _truthy(_env(reading, inv.env, "VLLM_ALLOW_RUNTIME_LORA_UPDATING")):
        _runtime_loading(reading, "VLLM_ALLOW_RUNTIME_LORA_UPDATING (the /v1/load_lora_adapter endpoint)", sources, "remove it and name every adapter in --lora-modules")  # fmt: skip
    return reading


def _vllm_loads(reading: Reading, parsed: Parsed, model: str | None, revision: str | None) -> None:
    """What vLLM loads besides the served model: its code at another revision, the
    tokenizer, a config, the generation config, draft models, adapters."""
    pin = "vLLM: --revision <commit>"
    code_revision = _one(parsed, "code-revision")
    if model and code_revision and code_revision != revision:
        reading.named.append(Named(model, "--code-revision", code_revision, "vLLM: --code-revision <commit>"))  # fmt: skip
    generation = _one(parsed, "generation-config")
    if generation and generation not in ("auto", "vllm"):
        reading.named.append(Named(generation, "--generation-config", revision, pin))
    tok_revision = _one(parsed, "tokenizer-revision")
    if tokenizer := _one(parsed, "tokenizer"):
        reading.named.append(Named(tokenizer, "--tokenizer", tok_revision or revision, "vLLM: --tokenizer-revision <commit>"))  # fmt: skip
    elif (
        model and tok_revision and tok_revision != revision
    ):  # the model's own tokenizer, at another revision
        reading.named.append(Named(model, "--tokenizer-revision", tok_revision, "vLLM: --tokenizer-revision <commit>"))  # fmt: skip
    if config := _one(parsed, "hf-config-path"):
        reading.named.append(Named(config, "--hf-config-path", revision, pin))
    if draft := _one(parsed, "speculative-model"):  # vLLM before 0.8
        reading.named.append(Named(draft, "--speculative-model", _one(parsed, "speculative-model-revision")))  # fmt: skip
    speculative = _json_object(reading, _one(parsed, "speculative-config"), "--speculative-config")
    for key, found in parsed.named.items():  # --speculative-config.model X
        if key.startswith("speculative-config."):
            speculative[key.split(".", 1)[1]] = found[-1][1]
    if isinstance(speculative.get("model"), str):
        spec_rev = speculative.get("revision")
        reading.named.append(Named(str(speculative["model"]), "--speculative-config model", spec_rev if isinstance(spec_rev, str) else None, 'vLLM: "revision": "<commit>" in --speculative-config'))  # fmt: skip
    for adapter in _lora_modules(reading, parsed):
        reading.named.append(Named(adapter, "--lora-modules", None, _LORA_PIN))
    if qlora := _one(parsed, "qlora-adapter"):
        reading.named.append(Named(qlora, "--qlora-adapter-name-or-path", None, _LORA_PIN))
    for option in ("default-mm-loras", "prompt-adapters"):
        if _one(parsed, option):
            reading.problem("ambiguous", f"--{option} loads adapters mlbom does not read: serve them from --lora-modules paths on a verified volume")  # fmt: skip
    _loading_options(reading, parsed, "vLLM")


_LORA_PIN = (
    "vLLM cannot pin a LoRA adapter from the Hub: serve it from a volume or an OCI image, or "
    "list every model with its commit in the annotation " + ANNOTATION
)
_SAFE_LOAD_FORMATS = frozenset(
    {
        "auto",
        "pt",
        "safetensors",
        "npcache",
        "dummy",
        "bitsandbytes",
        "gguf",
        "mistral",
        "fastsafetensors",
    }
)


def _loading_options(reading: Reading, parsed: Parsed, runtime: str) -> None:
    """Options that change where the weights come from."""
    if _one(parsed, "config"):
        reading.problem("config-file", f"{runtime} reads options from {_one(parsed, 'config')}, a file the webhook cannot see: put the options on the command line")  # fmt: skip
    load_format = _one(parsed, "load-format")
    if load_format and load_format.lower() not in _SAFE_LOAD_FORMATS:
        reading.problem("byte-source", f"--load-format {load_format} loads the weights from elsewhere than the model's files: use auto or safetensors")  # fmt: skip
    for option in ("plugin", "log-config"):
        if found := parsed.value(option):
            reading.problem("byte-source", f"{found[0]} {found[1]} runs Python from a file mlbom cannot see: remove it")  # fmt: skip
    if _one(parsed, "model-loader-extra-config"):
        reading.problem("byte-source", "--model-loader-extra-config can point the loader at other weights: remove it")  # fmt: skip
    if download := _one(parsed, "download-dir"):
        reading.cache_dirs.append(download)
        reading.own_caches.append(f"--download-dir {download}")
    if _one(parsed, "remote-weights"):
        reading.problem("byte-source", f"{runtime} takes its weights from another instance: load them from the verified model")  # fmt: skip


def _lora_modules(reading: Reading, parsed: Parsed) -> list[str]:
    """The adapters' paths: ``name=path`` words or JSON objects (``{"name", "path"}``)."""
    modules = [v for _, v in parsed.all("--lora-modules")]
    paths = []
    for module in modules:
        if module.lstrip().startswith("{"):
            path = _json_object(reading, module, "--lora-modules").get("path")
        else:
            path = module.partition("=")[2]
        if isinstance(path, str) and path:
            paths.append(path)
        else:
            reading.problem("ambiguous", f"--lora-modules {module[:80]!r} names no adapter path mlbom can read")  # fmt: skip
    return paths[:MAX_ITEMS]


def _sglang(inv: Invocation, sources: Sources) -> Reading | None:
    python = _python(inv.argv)
    if python and python[0] in ("sglang.launch_server", "sglang.srt.server", "sglang_router.launch_server"):  # fmt: skip
        words = python[1]
    elif _base(inv.argv[0]) == "sglang" and inv.argv[1:2] == ["serve"]:
        words = inv.argv[2:]
    else:
        return None
    reading = Reading("SGLang", "inference")
    parsed = _parsed(reading, words, SGLANG)
    revision = _one(parsed, "revision")
    pin = "SGLang: --revision <commit>"
    model = _one(parsed, "model")
    if model:
        reading.named.append(Named(model, parsed.value("model")[0], revision, pin))  # type: ignore[index]
    else:
        reading.problem("no-model", "SGLang needs --model-path: name the model and its --revision")
    if tokenizer := _one(parsed, "tokenizer"):
        reading.named.append(Named(tokenizer, "--tokenizer-path", revision, pin))
    if draft := _one(parsed, "draft"):
        reading.named.append(Named(draft, "--speculative-draft-model-path", _one(parsed, "draft-revision"), "SGLang: --speculative-draft-model-revision <commit>"))  # fmt: skip
    for _, path in parsed.all("--lora-paths"):
        reading.named.append(Named(path.partition("=")[2] or path, "--lora-paths", None, _LORA_PIN))
    _loading_options(reading, parsed, "SGLang")
    _hub_sources(reading, inv.env, sources, ("SGLANG_USE_MODELSCOPE",))
    if _truthy(_env(reading, inv.env, "SGLANG_ENABLE_DYNAMIC_LORA")) or _one(
        parsed, "enable-lora-dynamic"
    ):
        _runtime_loading(reading, "SGLang's /load_lora_adapter", sources, "name every adapter in --lora-paths")  # fmt: skip
    return reading


def _tgi(inv: Invocation, sources: Sources) -> Reading | None:
    """TGI's launcher and TEI's router (clap): a flag, else its variable."""
    program = _base(inv.argv[0])
    if program == "text-generation-launcher":
        runtime, options = "TGI", TGI
    elif program == "text-embeddings-router":
        runtime, options = "TEI", TEI
    else:
        return None
    reading = Reading(runtime, "inference")
    parsed = _parsed(reading, inv.argv[1:], options)
    pin = f"{runtime}: --revision <commit> or the variable REVISION"
    found = parsed.value("model")
    model, how = (found[1], "--model-id") if found else (None, "")
    if model is None:
        for name in ("MODEL_ID", "HF_MODEL_ID"):
            if value := _env(reading, inv.env, name):
                model, how = value, f"env {name}"
                break
    revision = _one(parsed, "revision")
    if revision is None:
        revision = _env(reading, inv.env, "REVISION") or _env(reading, inv.env, "HF_MODEL_REVISION")
    if model:
        reading.named.append(Named(model, how, revision, pin))
    elif not any(code == "unknown-value" for code, _ in reading.problems):
        default = "bigscience/bloom-560m" if runtime == "TGI" else "a built-in default"
        reading.problem("no-model", f"{runtime} serves {default} when no model is named: set --model-id and --revision")  # fmt: skip
    if tokenizer := _one(parsed, "tokenizer"):
        reading.named.append(Named(tokenizer, "--tokenizer-id", revision, pin))
    adapters = _one(parsed, "lora-adapters") or _env(reading, inv.env, "LORA_ADAPTERS")
    for adapter in (adapters or "").split(",")[:MAX_ITEMS]:
        if adapter.strip():
            value = adapter.strip().partition("=")[2] or adapter.strip()
            reading.named.append(Named(value, "--lora-adapters", None, _LORA_PIN))
    if _one(parsed, "weights-cache-override") or _env(reading, inv.env, "WEIGHTS_CACHE_OVERRIDE"):
        reading.problem("byte-source", "--weights-cache-override loads weights from a folder instead of the named model: remove it")  # fmt: skip
    # the images set HUGGINGFACE_HUB_CACHE=/data; --huggingface-hub-cache wins over any variable
    _hub_sources(reading, inv.env, sources, cache="/data")
    if flag := _one(parsed, "cache"):
        reading.cache_dirs.append(flag)
        reading.own_caches.append(f"--huggingface-hub-cache {flag}")
    return reading


def _huggingfaceserver(inv: Invocation, sources: Sources) -> Reading | None:
    python = _python(inv.argv)
    if not (python and python[0] == "huggingfaceserver"):
        return None
    reading = Reading("KServe huggingfaceserver", "inference")
    # its vLLM backend takes every vLLM option too; unknown options are dropped silently
    parsed = _parsed(reading, python[1], HUGGINGFACESERVER)
    pin = "KServe huggingfaceserver: --model_revision=<commit>"
    revision = _one(parsed, "revision")
    model = _one(parsed, "model")
    if model:
        reading.named.append(Named(model, "--model_id", revision, pin))
    elif directory := _one(parsed, "dir"):
        reading.named.append(Named(directory, "--model_dir"))
    else:
        reading.problem("no-model", "huggingfaceserver needs --model_id or --model_dir")
    _vllm_loads(reading, parsed, model, revision)
    _loading_options(reading, parsed, "huggingfaceserver")
    _hub_sources(reading, inv.env, sources)
    return reading


# llama.cpp's options that load something: (key, its variable, what the value is)
_LLAMA_LOADS = (
    ("model", "LLAMA_ARG_MODEL", "path"), ("model-url", "LLAMA_ARG_MODEL_URL", "url"),
    ("docker-repo", "LLAMA_ARG_DOCKER_REPO", "docker"), ("hf-repo", "LLAMA_ARG_HF_REPO", "hub"),
    ("draft", "LLAMA_ARG_MODEL_DRAFT", "path"), ("draft", "LLAMA_ARG_SPEC_DRAFT_MODEL", "path"),
    ("hf-repo-draft", "LLAMA_ARG_HFD_REPO", "hub"),
    ("hf-repo-draft", "LLAMA_ARG_SPEC_DRAFT_HF_REPO", "hub"),
    ("vocoder", "LLAMA_ARG_MODEL_VOCODER", "path"), ("hf-repo-v", "LLAMA_ARG_HF_REPO_V", "hub"),
    ("mmproj", "LLAMA_ARG_MMPROJ", "path"), ("mmproj-url", "LLAMA_ARG_MMPROJ_URL", "url"),
)  # fmt: skip
_LLAMA_PIN = (
    "llama.cpp downloads the main branch, it cannot pin a commit: serve the GGUF file from "
    "an image volume pinned by digest, or a verified volume named in " + ANNOTATION
)


_KSERVE_SERVERS = ("sklearnserver", "xgbserver", "lgbserver", "pmmlserver", "paddleserver")


def _kserve_server(inv: Invocation, sources: Sources) -> Reading | None:
    """KServe's framework servers (``python -m sklearnserver --model_dir=…``, the images'
    entrypoints): the model is the folder --model_dir names."""
    python = _python(inv.argv)
    module = python[0] if python else None
    if module not in _KSERVE_SERVERS and _base(inv.argv[0]) not in _KSERVE_SERVERS:
        return None
    reading = Reading(f"KServe {module or _base(inv.argv[0])}", "inference")
    words = python[1] if python and module else inv.argv[1:]
    options = Options(models={"--model_dir": "dir", "--model-dir": "dir"}, underscores=True, prefixes=True)  # fmt: skip
    parsed = _parsed(reading, words, options)
    directory = _one(parsed, "dir") or "/mnt/models"
    reading.named.append(Named(directory, "--model_dir", path=True))
    return reading


def _llama_cpp(inv: Invocation, sources: Sources) -> Reading | None:
    """llama-server: its options (the command line wins over LLAMA_ARG_* variables)."""
    if _base(inv.argv[0]) not in ("llama-server", "server", "llama-cli") or (
        _base(inv.argv[0]) == "server" and "llama" not in inv.argv[0]
    ):
        return None
    reading = Reading("llama.cpp server", "inference")
    parsed = _parsed(reading, inv.argv[1:], LLAMA_CPP)
    found: dict[str, str] = {}
    for key, variable, _ in _LLAMA_LOADS:
        value = _one(parsed, key) or _env(reading, inv.env, variable)
        if value and key not in found:
            found[key] = value
    for key, variable, kind in _LLAMA_LOADS:
        value = found.pop(key, None)
        if not value or (key == "model" and ("hf-repo" in found or "docker-repo" in found)):
            continue  # a repository given beside --model replaces it (llama.cpp downloads there)
        how = f"{key} ({variable})"
        if kind == "hub":
            reading.named.append(Named(value.split(":", 1)[0], how, None, _LLAMA_PIN))
        elif kind == "docker":  # Docker Hub's ai/ namespace unless one is named
            repo, _, tag = value.partition(":")
            image = repo if "/" in repo else f"ai/{repo}"
            reading.named.append(Named(f"oci://docker.io/{image}:{tag or 'latest'}", how, uri=True))
        else:
            reading.named.append(Named(value, how, uri=kind == "url", path=kind == "path"))
    for _, path in parsed.all("lora"):
        reading.named.append(Named(path.split(",")[0], "--lora", path=True))
    presets = [w for w in inv.argv[1:] if re.match(r"^--[a-z0-9-]+-default$", w)]
    if presets:
        reading.problem("ambiguous", f"{presets[0]} makes llama.cpp download a built-in model from the Hub's main branch: serve the model with --model")  # fmt: skip
    if _one(parsed, "models-dir") or _one(parsed, "config"):
        reading.problem("config-file", "llama.cpp's router mode loads any model of a folder or preset file on request: serve one model with --model")  # fmt: skip
    if not reading.named and not reading.problems:
        reading.problem("no-model", "llama-server without a model runs in router mode and loads models on request: give --model PATH")  # fmt: skip
    _hub_sources(reading, inv.env, sources)
    return reading


def _ollama(inv: Invocation, sources: Sources) -> Reading | None:
    if _base(inv.argv[0]) != "ollama":
        return None
    command = inv.argv[1] if len(inv.argv) > 1 else "serve"
    if command in ("pull", "run", "create", "cp"):
        reading = Reading("ollama", "loader")
        if len(inv.argv) > 2:
            reading.named.append(Named(f"ollama://{inv.argv[2]}", f"ollama {command}", uri=True))
        return reading
    reading = Reading("Ollama", "inference")
    if command == "serve":
        models = inv.env.get("OLLAMA_MODELS") or "/root/.ollama/models"
        reading.named.append(Named(models, "OLLAMA_MODELS (its model store)", path=True))
        _runtime_loading(reading, "Ollama pulls any model a client asks for (/api/pull)", sources, "serve the model with a runtime that loads one pinned model")  # fmt: skip
    return reading


def _triton(inv: Invocation, sources: Sources) -> Reading | None:
    if _base(inv.argv[0]) != "tritonserver":
        return None
    reading = Reading("Triton", "inference")
    parsed = _parsed(reading, inv.argv[1:], TRITON)
    for option, repository in parsed.all("repository"):
        reading.named.append(Named(repository, option, uri="://" in repository))
    if not parsed.all("repository"):
        reading.problem("no-model", "tritonserver needs --model-repository")
    for key in ("backend-directory", "repoagent-directory"):
        if found := parsed.value(key):
            reading.problem("byte-source", f"{found[0]} {found[1]} loads Triton's native code from a folder mlbom cannot check: use the image's own")  # fmt: skip
    mode = (_one(parsed, "control-mode") or "none").lower()
    if mode in ("poll", "explicit"):
        _runtime_loading(reading, f"--model-control-mode={mode}", sources, "use --model-control-mode=none")  # fmt: skip
    return reading


def _lmdeploy(inv: Invocation, sources: Sources) -> Reading | None:
    argv = _as_program(inv.argv, "lmdeploy", "lmdeploy")
    if _base(argv[0]) != "lmdeploy" or argv[1:3] != ["serve", "api_server"]:
        return None
    reading = Reading("LMDeploy", "inference")
    parsed = _parsed(reading, argv[3:], LMDEPLOY)
    if parsed.positionals:
        reading.named.append(Named(parsed.positionals[0], "lmdeploy serve api_server argument", _one(parsed, "revision"), "LMDeploy: --revision <commit>"))  # fmt: skip
    else:
        reading.problem("no-model", "lmdeploy serve api_server needs the model as its argument")
    if draft := _one(parsed, "draft"):
        reading.named.append(Named(draft, "--speculative-draft-model", None, "LMDeploy cannot pin a draft model: serve it from a verified volume"))  # fmt: skip
    for _, adapter in parsed.all("--adapters"):
        reading.named.append(Named(adapter.partition("=")[2] or adapter, "--adapters", None, _LORA_PIN))  # fmt: skip
    _loading_options(reading, parsed, "LMDeploy")
    _hub_sources(reading, inv.env, sources, ("LMDEPLOY_USE_MODELSCOPE",))
    return reading


def _localai(inv: Invocation, sources: Sources) -> Reading | None:
    if _base(inv.argv[0]) not in ("local-ai", "entrypoint.sh"):
        return None
    reading = Reading("LocalAI", "inference")
    words = inv.argv[2:] if inv.argv[1:2] == ["run"] else inv.argv[1:]
    for word in words:
        if not word.startswith("-"):
            reading.named.append(Named(word, "local-ai run argument", uri="://" in word))
    for name in ("MODELS", "PRELOAD_MODELS"):
        if _env(reading, inv.env, name):
            reading.problem("config-file", f"{name} makes LocalAI load models mlbom does not read: name each model as an argument")  # fmt: skip
    _runtime_loading(reading, "LocalAI installs models from galleries on request (/models/apply)", sources, "serve the model with a runtime that loads one pinned model")  # fmt: skip
    return reading


def _nim(inv: Invocation, sources: Sources) -> Reading | None:
    if inv.argv[:1] != ["nim-server"] and not any(w.startswith("/opt/nim/") for w in inv.argv[:1]):
        return None
    reading = Reading("NVIDIA NIM", "inference")
    for variable in ("NIM_REPOSITORY_OVERRIDE", "NIM_PASSTHROUGH_ARGS", "NIM_MANIFEST_PATH"):
        if _env(reading, inv.env, variable):
            reading.problem("byte-source", f"{variable} changes where NIM takes its model or how it loads it, which mlbom does not read: remove it")  # fmt: skip
    # a model-free NIM takes its model as an argument (which wins over the variables) and
    # hands the other arguments to its vLLM or SGLang backend
    parsed = _parsed(reading, inv.argv[1:], VLLM_API_SERVER)
    variable = "NIM_MODEL_PATH" if inv.env.get("NIM_MODEL_PATH") is not None else "NIM_MODEL_NAME"
    name = parsed.positionals[0] if parsed.positionals else _env(reading, inv.env, variable)
    how = "NIM argument" if parsed.positionals else f"env {variable}"
    revision = _one(parsed, "revision") or _env(reading, inv.env, "NIM_MODEL_REVISION")
    if name:
        reading.named.append(Named(name, how, revision, "NIM: NIM_MODEL_NAME=hf://ORG/REPO@<commit>", uri="://" in name))  # fmt: skip
        _vllm_loads(reading, parsed, name, revision)
    else:
        # the image names its model; the weights come from NGC at start-up
        reading.named.append(Named("ngc://(the model of the NIM image)", "the NIM image downloads its model from NGC", uri=True))  # fmt: skip
    # NIM starts from its cache, offline, when the cache already holds the model's files
    reading.cache_dirs.append(_expand_path(reading, inv.env, _env(reading, inv.env, "NIM_CACHE_PATH") or "/opt/nim/.cache"))  # fmt: skip
    reading.own_caches.append(f"NIM_CACHE_PATH {reading.cache_dirs[-1]}")
    _hub_sources(reading, inv.env, sources)
    return reading


def _inference_toolkit(inv: Invocation, sources: Sources) -> Reading | None:
    if inv.argv[:1] != ["hf-inference-toolkit"]:
        return None
    reading = Reading("Hugging Face inference toolkit", "inference")
    if model := _env(reading, inv.env, "HF_MODEL_ID"):
        revision = _env(reading, inv.env, "HF_REVISION") or _env(
            reading, inv.env, "HF_MODEL_REVISION"
        )
        reading.named.append(Named(model, "env HF_MODEL_ID", revision, "HF_REVISION=<commit>"))
    else:
        reading.named.append(Named(inv.env.get("HF_MODEL_DIR") or "/opt/huggingface/model", "HF_MODEL_DIR"))  # fmt: skip
    # it serves HF_MODEL_DIR as it finds it when that is not empty (a handler.py included)
    reading.cache_dirs.append(_expand_path(reading, inv.env, _env(reading, inv.env, "HF_MODEL_DIR") or "/opt/huggingface/model"))  # fmt: skip
    reading.own_caches.append(f"HF_MODEL_DIR {reading.cache_dirs[-1]}")
    _hub_sources(reading, inv.env, sources)
    return reading


# -- loaders: programs that put a model where a server reads it ---------------------------


def _hub_download(inv: Invocation, sources: Sources) -> Reading | None:
    argv = _as_program(inv.argv, "huggingface_hub.commands.huggingface_cli", "huggingface-cli")
    program = _base(argv[0])
    if not ((program == "hf" or program == "huggingface-cli") and argv[1:2] == ["download"]):
        return None
    reading = Reading(f"{program} download", "loader")

    parsed = _parsed(reading, argv[2:], HUB_DOWNLOAD)
    if not parsed.positionals:
        reading.problem("no-model", f"{program} download names no repository")
        return reading
    kind = _one(parsed, "repo-type") or "model"
    if kind != "model":
        reading.named.append(Named(f"hf-{kind}://{parsed.positionals[0]}", f"{program} download --repo-type {kind}", uri=True))  # fmt: skip
    else:
        reading.named.append(Named(parsed.positionals[0], f"{program} download", _one(parsed, "revision"), f"{program} download --revision <commit>"))  # fmt: skip
    reading.writes += [d for d in (_one(parsed, "local-dir"), _one(parsed, "cache-dir")) if d]
    _hub_sources(reading, inv.env, sources)
    return reading


_COPIERS = {
    "aws": ("s3",), "gsutil": ("cp", "rsync"), "gcloud": ("storage",), "azcopy": ("copy", "cp", "sync"),
    "rclone": ("copy", "sync", "copyto"), "s5cmd": ("cp", "sync"), "mc": ("cp", "mirror"),
    "git": ("clone",), "git-lfs": ("clone",), "modelscope": ("download",),
}  # fmt: skip


def _copier(inv: Invocation, sources: Sources) -> Reading | None:
    """Object-store and git copies into a volume: the source is a model mlbom cannot check."""
    argv = inv.argv
    program = _base(argv[0])
    if program not in _COPIERS or (argv[1:2] and argv[1] not in _COPIERS[program]):
        if program == "git" and argv[1:2] and argv[1] in ("lfs", "checkout", "config"):
            return Reading("git", "other")  # works on a clone: its source is the clone's
        return None
    reading = Reading(program, "loader")
    words = [w for w in argv[2:] if not w.startswith("-")]
    sources_named = [w for w in words if "://" in w or w.startswith(("gs:", "s3:"))]
    if program == "modelscope":
        sources_named = [f"modelscope://{w}" for w in words][:1]
    if program == "git":
        sources_named = words[:1]
    how = f"{program} {argv[1] if len(argv) > 1 else ''}".strip()
    for source in sources_named or ["(a source mlbom cannot read)"]:
        reading.named.append(Named(source, how, uri=True))
    if len(words) > 1 and "://" not in words[-1] and not words[-1].startswith(("gs:", "s3:")):
        reading.writes.append(words[-1])  # the destination
    return reading


def _fetcher(inv: Invocation, sources: Sources) -> Reading | None:
    """curl and wget: a health check on this pod is harmless, a download is a loader."""
    program = _base(inv.argv[0])
    if program not in ("curl", "wget"):
        return None
    urls = [w for w in inv.argv[1:] if "://" in w or re.match(r"^[\w.-]+(:\d+)?/", w)]
    local = all(re.match(r"^(https?://)?(localhost|127\.\d+\.\d+\.\d+|\[::1\])([:/]|$)", u) for u in urls)  # fmt: skip
    if local and urls:
        return Reading(program, "other")
    writes = program == "wget" or any(w in ("-o", "-O", "--output", "--remote-name") or w.startswith(("-o", "--output=")) for w in inv.argv[1:])  # fmt: skip
    if not writes:
        return Reading(program, "other")
    reading = Reading(program, "loader")
    for url in urls or ["(a URL mlbom cannot read)"]:
        reading.named.append(Named(url, program, uri=True))
    return reading


def _storage_initializer(inv: Invocation, sources: Sources) -> Reading | None:
    """KServe's storage initializer: [SRC, DEST] pairs."""
    if inv.argv[:1] != ["storage-initializer"] and "storage-initializer" not in inv.argv[0]:
        return None
    reading = Reading("KServe storage-initializer", "loader")
    args = inv.argv[1:]
    for src, dest in zip(args[::2], args[1::2], strict=False):
        reading.named.append(Named(src, "storage-initializer source", pin="KServe: hf://{repo}:<commit>", uri=True))  # fmt: skip
        reading.writes.append(dest)
    if len(args) % 2:
        reading.problem("ambiguous", f"the storage initializer's arguments are not [SRC, DEST] pairs: {args[-1]!r} has no destination")  # fmt: skip
    _hub_sources(reading, inv.env, sources)
    return reading


def _modelcar_link(inv: Invocation, sources: Sources) -> Reading | None:
    """KServe's modelcar: ``ln -sf /proc/$$/root/models /mnt/models`` shares its image's
    /models with the server (the model is the modelcar's image)."""
    argv = inv.argv
    if _base(argv[0]) != "ln" or len(argv) < 3:
        return None
    if not re.match(r"^/proc/\d+/root/", argv[-2]):
        return None
    return Reading("KServe modelcar", "loader", writes=[argv[-1]])


def _mlbom_verify_load(inv: Invocation, sources: Sources) -> Reading | None:
    """mlbom's load-time verifier: with --fetch it is the loader of a pinned model (a Hub
    model as a Hugging Face cache in --path); without, it only reads."""
    if inv.argv[:2] != ["mlbom", "verify-load"]:
        return None
    parsed = _parsed(Reading("mlbom verify-load", "other"), inv.argv[2:], MLBOM_VERIFY_LOAD)
    if "--fetch" not in inv.argv[2:]:
        return Reading("mlbom verify-load", "other")
    reading = Reading("mlbom verify-load --fetch", "loader")
    if parsed.ambiguities or len(parsed.positionals) != 1 or not _one(parsed, "path"):
        reading.problem("ambiguous", "mlbom verify-load --fetch names no single model and --path")
        return reading
    reading.named.append(Named(parsed.positionals[0], "mlbom verify-load --fetch", uri=True))
    reading.writes.append(_one(parsed, "path") or "")
    _hub_sources(reading, inv.env, sources)
    return reading


READERS: tuple[Callable[..., Reading | None], ...] = (
    _vllm, _sglang, _tgi, _huggingfaceserver, _kserve_server, _llama_cpp, _ollama, _triton, _lmdeploy, _localai,
    _nim, _inference_toolkit, _hub_download, _copier, _fetcher, _storage_initializer,
    _modelcar_link, _mlbom_verify_load,
)  # fmt: skip
# Programs and modules that are serving runtimes, and the image repositories of runtimes:
# one that mlbom cannot read as it runs is refused, never taken for something else.
_RUNTIME_PROGRAMS = re.compile(
    r"^(vllm|sglang|text-generation-launcher|text-generation-server|text-embeddings-router|"
    r"llama-server|ollama|tritonserver|lmdeploy|local-ai|huggingfaceserver)$|"
    r"^(vllm|sglang|sglang_router|lmdeploy|text_generation_server|huggingfaceserver|tensorrt_llm)(\.|$)"
)
RUNTIME_IMAGES = re.compile(
    r"vllm|sglang|text-generation|text-embeddings|llama\.cpp|ollama|tritonserver|lmdeploy|"
    r"local-?ai|huggingfaceserver|tensorrt-llm|(^|/)nim/"
)


def runtime_program(argv: list[str]) -> str | None:
    """The serving runtime `argv` starts, by its program or module name, or names anywhere
    in its words (behind a wrapper mlbom does not know), if it names one."""
    python = _python(argv) if argv else None
    if python and python[0]:
        name = python[0]
    elif python and python[1]:
        name = _base(python[1][0])
    else:
        name = _base(argv[0]) if argv else ""
    if _RUNTIME_PROGRAMS.match(name):
        return name
    # behind a wrapper: a server started as it is documented (a word naming a runtime as an
    # option's value, such as --backend vllm, is not one)
    for i, word in enumerate(argv[1:], 1):
        following = argv[i + 1] if i + 1 < len(argv) else ""
        base = _base(word)
        if word == "-m" and _RUNTIME_PROGRAMS.match(following):
            return following
        if base in _STANDALONE_SERVERS or (base in _SERVING_COMMANDS and following in _SERVING_COMMANDS[base]):  # fmt: skip
            return base
    return None


_STANDALONE_SERVERS = frozenset(
    {
        "text-generation-launcher",
        "text-embeddings-router",
        "llama-server",
        "tritonserver",
        "local-ai",
    }
)
_SERVING_COMMANDS = {
    "vllm": {"serve"}, "sglang": {"serve"}, "lmdeploy": {"serve"}, "ollama": {"serve", "run", "pull", "create"},
}  # fmt: skip


# Words that mark a server or a download in a script mlbom cannot read.
SERVER_WORDS = re.compile(
    r"vllm|sglang|text-generation|text-embeddings|llama-server|llama\.cpp|ollama|tritonserver|"
    r"lmdeploy|local-ai|huggingface-cli|\bhf download|snapshot_download|hf_hub_download|"
    r"from_pretrained|huggingfaceserver|storage-initializer|\bnim_",
    re.IGNORECASE,
)


def read(inv: Invocation, sources: Sources) -> Reading | None:
    """What `inv` loads, if it is a program mlbom recognises."""
    if not inv.argv:
        return None
    python = _python(inv.argv)
    if python and python[0] is None and python[1] and not python[1][0].startswith("-"):
        inv = replace(inv, argv=python[1])  # python /usr/local/bin/vllm …: the script runs
    for reader in READERS:
        if (found := reader(inv, sources)) is not None:
            break
    else:
        return None
    found.cwd = inv.cwd
    if found.role != "other":
        _injection(found, inv.env)
    if found.unknown:
        names = ", ".join(found.unknown)
        origins = ", ".join(dict.fromkeys(found.unknown.values()))
        found.problem(
            "unknown-value",
            f"{names} may be set by {origins}, which the webhook cannot read: set each in env "
            f"(env wins over envFrom), or take single keys with env valueFrom instead of envFrom",
        )
    return found
