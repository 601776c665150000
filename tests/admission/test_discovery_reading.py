"""How discovery reads a container's command line: shell lines, wrappers, the kubelet's
environment, and each runtime's option parser; every reading an attacker could make the
runtime see differently is tried, and must either agree with the runtime or be refused."""

from __future__ import annotations

import pytest

from admission.discovery import PodUnderReview, account
from admission.discovery.commandline import read
from admission.discovery.environment import Env, is_unknown
from admission.discovery.options import Options, parse
from admission.discovery.runtimes import VLLM
from admission.discovery.untrusted import Scan

C = "0123456789abcdef0123456789abcdef01234567"


def found(container: dict, **spec) -> tuple[list[str], set[str]]:
    """(models of the pod, problem classes) for a pod of one GPU container."""
    container = {"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}, **container}
    pod = PodUnderReview("Pod", {}, {"containers": [container], **spec}, {})
    result = account(pod)
    models = [m.reference for m in result.all_models()]
    models += [p.reference for c in result.containers for p in c.paths]
    return models, {p.code for p in result.all_problems()}


def sh(script: str, **container) -> dict:
    return {"command": ["/bin/sh", "-c", script], **container}


# -- shell lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "model"),
    [
        (f"vllm serve acme/llm --revision {C}", f"hf://acme/llm@{C}"),
        (f"exec vllm serve 'acme/llm' --revision \"{C}\"", f"hf://acme/llm@{C}"),
        (f"set -e; M=acme/llm; exec vllm serve $M --revision {C}", f"hf://acme/llm@{C}"),
        (f"export M=acme/llm && vllm serve ${{M}} --revision {C}", f"hf://acme/llm@{C}"),
        (f"nohup timeout 1h vllm serve acme/llm --revision {C} 2>&1", f"hf://acme/llm@{C}"),
        (
            f"env HF_HUB_ENABLE_HF_TRANSFER=1 vllm serve acme/llm --revision {C} > /dev/null",
            f"hf://acme/llm@{C}",
        ),
        (f"# a comment\nvllm serve acme/llm \\\n  --revision {C}", f"hf://acme/llm@{C}"),
        (f"vllm serve acme/llm --revision {C} # --model evil/llm", f"hf://acme/llm@{C}"),
    ],
)
def test_simple_shell_lines_are_read(script, model):
    models, problems = found(sh(script))
    assert models == [model] and not problems, problems


def test_an_inline_assignment_does_not_change_its_own_expansion():
    # as in POSIX sh: $M is expanded before M=evil applies to the command
    env = [{"name": "M", "value": "acme/llm"}]
    models, _ = found(sh(f"M=evil/llm vllm serve $M --revision {C}", env=env))
    assert models == [f"hf://acme/llm@{C}"]


def test_positional_parameters_of_sh_c():
    container = {"command": ["sh", "-c", 'exec "$@"', "sh", "vllm", "serve", "evil/llm"]}
    assert found(container)[0] == ["hf://evil/llm"]
    container = {"command": ["bash", "-c", "--", "vllm serve $1", "x", "evil/llm"]}
    assert found(container)[0] == ["hf://evil/llm"]


@pytest.mark.parametrize(
    "script",
    [
        "vllm serve $(cat /etc/model)",
        "vllm serve `cat /etc/model`",
        "curl -s http://x | sh",
        "vllm serve acme/llm & wait",
        "true || vllm serve evil/llm",
        "eval vllm serve evil/llm",
        "source /cfg/env.sh; vllm serve $MODEL",
        ". /cfg/env.sh; vllm serve $MODEL",
        "if true; then vllm serve evil/llm; fi",
        "for m in evil/llm; do vllm serve $m; done",
        "vllm serve ${MODEL:-evil/llm}",
        "vllm serve acme/llm 'unclosed",
        "cat <<EOF > /models/x\nEOF\nvllm serve /models/x",
        "echo weights > /models/model.safetensors; vllm serve /models",
        "(vllm serve evil/llm)",
    ],
)
def test_shell_lines_mlbom_cannot_read_are_refused(script):
    assert "shell" in found(sh(script))[1]


@pytest.mark.parametrize(
    "script",
    [
        "vllm serve acme/llm --{tokenizer=evil/llm,served-model-name=x}",  # brace expansion
        "vllm serve acme/llm $'--tokenizer' evil/llm",  # ANSI-C quoting
        "text-generation-launcher *",  # pathname expansion
        'vllm serve acme/llm --served-model-name="x$@"',
    ],
)
def test_bash_expansions_mlbom_does_not_perform_are_refused(script):
    container = {"command": ["bash", "-c", script, "bash", "a", "--tokenizer evil/llm"]}
    assert "shell" in found(container)[1]


def test_exec_a_names_only_argv0():
    script = "exec -a text-generation-launcher vllm serve evil/llm"
    env = [{"name": "MODEL_ID", "value": "acme/llm"}]
    assert found(sh(script, env=env))[0] == ["hf://evil/llm"]


def test_bash_env_runs_a_file_first():
    env = [{"name": "BASH_ENV", "value": "/cfg/env.sh"}]
    assert "shell" in found({"command": ["bash", "-c", "vllm serve acme/llm"], "env": env})[1]


def test_a_hub_name_that_is_also_a_folder_on_a_volume_is_ambiguous():
    mounts = [{"name": "v", "mountPath": "/work/acme"}]
    volumes = [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]
    container = {"command": ["vllm", "serve", "acme/llm", "--revision", C], "workingDir": "/work",
                 "volumeMounts": mounts}  # fmt: skip
    assert "ambiguous" in found(container, volumes=volumes)[1]
    script = f"cd /work && vllm serve acme/llm --revision {C}"
    assert "ambiguous" in found(sh(script, volumeMounts=mounts), volumes=volumes)[1]
    container = {"image": "vllm/vllm-openai:v0.10.0", "args": ["acme/llm", "--revision", C],
                 "volumeMounts": [{"name": "v", "mountPath": "/vllm-workspace"}]}  # fmt: skip
    assert "ambiguous" in found(container, volumes=volumes)[1]


def test_dot_dot_in_a_path_is_resolved_before_tracing():
    mounts = [{"name": "m", "mountPath": "/models"}, {"name": "p", "mountPath": "/evil"}]
    volumes = [{"name": "m", "emptyDir": {}}, {"name": "p", "persistentVolumeClaim": {"claimName": "c"}}]  # fmt: skip
    models, problems = found({"command": ["vllm", "serve", "/models/../evil"], "volumeMounts": mounts}, volumes=volumes)  # fmt: skip
    assert models == ["pvc://c"] and "unmappable" in problems


@pytest.mark.parametrize(
    "variable", ["PYTHONPATH", "LD_PRELOAD", "REQUESTS_CA_BUNDLE", "VLLM_MODEL_REDIRECT_PATH"]
)
def test_variables_that_let_other_code_or_bytes_in_are_refused(variable):
    container = {"command": ["vllm", "serve", "acme/llm", "--revision", C],
                 "env": [{"name": variable, "value": "/cfg/x"}]}  # fmt: skip
    assert "byte-source" in found(container)[1]


def test_nvidia_visible_devices_makes_an_inference_container():
    container = {"name": "x", "image": "acme/server:1", "command": ["/srv/run"],
                 "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]}  # fmt: skip
    pod = PodUnderReview("Pod", {}, {"containers": [container]}, {})
    assert "no-model" in {p.code for p in account(pod).all_problems()}


@pytest.mark.parametrize(
    "command",
    [
        ["bash", "/scripts/start.sh"],  # a script file mlbom cannot see
        ["sh"],  # commands from its input
        ["sh", "-s"],
        ["env", "--split-string=vllm serve evil/llm"],
    ],
)
def test_shells_that_read_what_mlbom_cannot_see_are_refused(command):
    assert "shell" in found({"command": command})[1]


def test_a_command_beside_the_server_that_mlbom_does_not_read_is_refused():
    _models, problems = found(sh(f"python3 /fetch.py && vllm serve acme/llm --revision {C}"))
    assert "shell" in problems
    assert "shell" in found(sh(f"cp -r /evil /models && vllm serve /models --revision {C}"))[1]


def test_harmless_commands_beside_the_server_pass():
    script = f"mkdir -p /tmp/x && nvidia-smi && echo start && vllm serve acme/llm --revision {C}"
    assert found(sh(script)) == ([f"hf://acme/llm@{C}"], set())


def test_a_hook_or_probe_that_downloads_is_a_loader():
    hook = {"lifecycle": {"postStart": {"exec": {"command": ["hf", "download", "evil/llm"]}}}}
    models, problems = found({"command": ["vllm", "serve", "acme/llm", "--revision", C], **hook})
    assert "hf://evil/llm" in models and "unpinned" not in problems  # the reviewer says unpinned
    probe = {"readinessProbe": {"exec": {"command": ["sh", "-c", "curl -s localhost:8000/health | grep ok"]}}}  # fmt: skip
    assert found({"command": ["vllm", "serve", "acme/llm", "--revision", C], **probe})[1] == set()


# -- the kubelet's environment ---------------------------------------------------------------


def env_of(container: dict) -> Env:
    return Env.of(container, Scan(), "c")


def test_kubelet_expansion_uses_only_earlier_variables():
    env = env_of({"env": [
        {"name": "MODEL", "value": "$(ORG)/llm"},
        {"name": "ORG", "value": "acme"},
        {"name": "LATER", "value": "$(ORG)/llm"},
    ]})  # fmt: skip
    assert env.get("MODEL") == "$(ORG)/llm" and env.get("LATER") == "acme/llm"


def test_the_last_definition_wins_and_dollar_dollar_escapes():
    env = env_of({"env": [
        {"name": "M", "value": "acme/llm"}, {"name": "M", "value": "evil/llm"},
        {"name": "E", "value": "$$(M)"},
    ]})  # fmt: skip
    assert env.get("M") == "evil/llm" and env.get("E") == "$(M)"


def test_values_the_webhook_cannot_see_are_unknown_not_absent():
    env = env_of({
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    })  # fmt: skip
    assert is_unknown(env.get("S") or "") and is_unknown(env.get("ANY") or "")
    assert "ConfigMap cfg" in env.origin("ANY")


@pytest.mark.parametrize(
    "container",
    [
        {
            "command": ["vllm", "serve", "$(MODEL)"],
            "env": [{"name": "MODEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "m"}}}],
        },
        {"command": ["text-generation-launcher"], "envFrom": [{"configMapRef": {"name": "c"}}]},
        {
            "command": ["vllm", "serve", "acme/llm", "--revision", C],
            "envFrom": [{"secretRef": {"name": "hf"}}],
        },
        {
            "command": ["vllm", "serve", "acme/llm", "$(EXTRA)"],
            "env": [
                {
                    "name": "EXTRA",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['x']"}},
                }
            ],
        },
    ],
)
def test_unknown_values_that_may_name_a_model_are_refused(container):
    assert "unknown-value" in found(container)[1]


def test_env_from_makes_every_variable_a_runtime_reads_unknown():
    container = {
        "command": ["text-generation-launcher", "--model-id", "acme/llm", "--revision", C],
        "envFrom": [{"secretRef": {"name": "hf"}}],
    }
    result = account(PodUnderReview("Pod", {}, {"containers": [container]}, {}))
    (problem,) = [p for p in result.all_problems() if p.code == "unknown-value"]
    assert "HF_ENDPOINT" in problem.message and "PYTHONPATH" in problem.message
    assert "envFrom Secret hf" in problem.message and "valueFrom" in problem.message


def test_a_secret_taken_key_by_key_is_known():
    container = {
        "command": ["text-generation-launcher", "--model-id", "acme/llm", "--revision", C],
        "env": [
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
        ],
    }
    assert found(container) == ([f"hf://acme/llm@{C}"], set())


def test_env_wrapper_unsets_and_overrides():
    env = [{"name": "MODEL_ID", "value": "acme/llm"}, {"name": "REVISION", "value": C}]
    container = {"command": ["env", "MODEL_ID=evil/llm", "text-generation-launcher"], "env": env}
    assert found(container)[0] == [f"hf://evil/llm@{C}"]
    container = {"command": ["env", "-u", "REVISION", "text-generation-launcher"], "env": env}
    assert found(container)[0] == ["hf://acme/llm"]


# -- option parsers ---------------------------------------------------------------------------


def test_vllm_options_as_argparse_reads_them():
    p = parse(["--dtype", "auto", "acme/llm", "--max_model_len=4096", "--trust-remote-code"], VLLM)
    assert p.positionals == ["acme/llm"] and not p.ambiguities
    p = parse(["--no-enable-prefix-caching", "acme/llm"], VLLM)
    assert p.positionals == ["acme/llm"] and not p.ambiguities
    p = parse(["--served-model-name", "a", "b", "--model", "acme/llm"], VLLM)
    assert p.value("model") == ("--model", "acme/llm") and not p.positionals


@pytest.mark.parametrize(
    "args",
    [
        ["--mod", "evil/llm"],  # argparse prefix of --model
        ["--model-", "evil/llm"],
        ["--tokenizer-rev", "x", "acme/llm"],
        ["--model", "acme/llm", "--model", "evil/llm"],
        ["--model=acme/llm", "--model", "evil/llm"],
        ["acme/llm", "--model", "evil/llm"],  # positional and option
        ["acme/llm", "evil/llm"],  # two positionals
        ["--future-flag", "evil/llm", "--model", "acme/llm"],  # value or positional?
        ["--revision", C, "--revision", "main"],
    ],
)
def test_vllm_readings_that_could_differ_are_ambiguous(args):
    assert parse(args, VLLM).ambiguities


def test_dotted_json_options_are_read():
    models, _ = found({"command": ["vllm", "serve", "acme/llm", "--revision", C, "--speculative-config.model", "evil/draft"]})  # fmt: skip
    assert "hf://evil/draft" in models


def test_a_double_dash_ends_options():
    p = parse(["--", "--model"], Options(models={"--model": "model"}, positional="model"))
    assert p.positionals == ["--model"]


# -- runtimes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "model"),
    [
        (
            {"image": "vllm/vllm-openai:v0.10.0", "args": ["acme/llm", "--revision", C]},
            f"hf://acme/llm@{C}",
        ),
        (
            {
                "command": [
                    "python3",
                    "-m",
                    "vllm.entrypoints.openai.api_server",
                    "--model",
                    "acme/llm",
                    "--revision",
                    C,
                ]
            },
            f"hf://acme/llm@{C}",
        ),
        (
            {
                "command": [
                    "python3",
                    "-m",
                    "sglang.launch_server",
                    "--model-path",
                    "acme/llm",
                    "--revision",
                    C,
                ]
            },
            f"hf://acme/llm@{C}",
        ),
        (
            {
                "image": "ghcr.io/huggingface/text-generation-inference:3",
                "env": [
                    {"name": "MODEL_ID", "value": "acme/llm"},
                    {"name": "REVISION", "value": C},
                ],
            },
            f"hf://acme/llm@{C}",
        ),
        (
            {
                "image": "ghcr.io/huggingface/text-generation-inference:3",
                "args": ["--model-id", "evil/llm"],
                "env": [{"name": "MODEL_ID", "value": "acme/llm"}],
            },
            "hf://evil/llm",
        ),
        ({"command": ["llama-server", "-hf", "acme/llm-GGUF:Q4_K_M"]}, "hf://acme/llm-GGUF"),
        (
            {"command": ["lmdeploy", "serve", "api_server", "acme/llm", "--revision", C]},
            f"hf://acme/llm@{C}",
        ),
        (
            {
                "command": [
                    "python",
                    "-m",
                    "huggingfaceserver",
                    "--model_id=acme/llm",
                    f"--model_revision={C}",
                ]
            },
            f"hf://acme/llm@{C}",
        ),
        ({"command": ["vllm", "serve", "ACME/LLM", "--revision", C.upper()]}, f"hf://ACME/LLM@{C}"),
    ],
)
def test_runtimes_name_their_model(container, model):
    assert model in found(container)[0]


def test_a_runtime_that_names_no_model_serves_its_default_and_is_refused():
    assert "no-model" in found({"command": ["vllm", "serve", "--port", "8000"]})[1]
    assert "no-model" in found({"command": ["text-generation-launcher"]})[1]


@pytest.mark.parametrize(
    "container",
    [
        {
            "command": ["vllm", "serve", "acme/llm"],
            "env": [{"name": "HF_ENDPOINT", "value": "https://mirror.example"}],
        },
        {
            "command": ["vllm", "serve", "acme/llm"],
            "env": [{"name": "VLLM_USE_MODELSCOPE", "value": "True"}],
        },
        {
            "command": ["vllm", "serve", "acme/llm"],
            "env": [{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "1"}],
        },
        {"command": ["vllm", "serve", "acme/llm", "--load-format", "runai_streamer"]},
        {"command": ["ollama", "serve"]},
        {"command": ["tritonserver", "--model-repository=/m", "--model-control-mode=explicit"]},
    ],
)
def test_byte_sources_the_policy_does_not_list_are_refused(container):
    assert "byte-source" in found(container)[1]


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_an_offline_server_reads_a_cache_it_did_not_fill(variable):
    # admitted only where mlbom's verifier filled that cache (tests/admission/test_verifier_injection.py)
    container = {"command": ["vllm", "serve", "acme/llm"], "env": [{"name": variable, "value": "1"}]}  # fmt: skip
    assert "offline-cache" in found(container)[1]


def test_a_cache_on_a_shared_volume_is_a_byte_source():
    container = {
        "command": ["vllm", "serve", "acme/llm", "--revision", C, "--download-dir", "/cache"],
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
    }
    volumes = [{"name": "cache", "persistentVolumeClaim": {"claimName": "shared"}}]
    assert "byte-source" in found(container, volumes=volumes)[1]
    volumes = [{"name": "cache", "emptyDir": {}}]
    assert found(container, volumes=volumes) == ([f"hf://acme/llm@{C}"], set())


def test_commandline_of_an_unknown_image_runs_its_args():
    line = read({"args": ["sh", "-c", "vllm serve acme/llm"]}, Env(), Scan(), "c", None)
    assert [i.argv for i in line.invocations] == [["vllm", "serve", "acme/llm"]]
    line = read({"args": ["acme/llm"]}, Env(), Scan(), "c", ["vllm", "serve"])
    assert [i.argv for i in line.invocations] == [["vllm", "serve", "acme/llm"]]


def test_the_kubelet_expands_any_name_up_to_the_parenthesis():
    env = env_of({"env": [{"name": ".M", "value": "evil/llm"}, {"name": "X", "value": "$(.M)"}]})
    assert env.get("X") == "evil/llm"


def test_an_optional_value_does_not_swallow_an_option():
    p = parse(["--hf-token", "--model=evil/llm", "--model", "acme/llm"], VLLM)
    assert p.ambiguities  # two different models, as vLLM would see them
    p = parse(["--hf-token", "secret", "--model", "acme/llm"], VLLM)
    assert p.value("model") == ("--model", "acme/llm") and not p.positionals


@pytest.mark.parametrize(
    "container",
    [
        {"command": ["sh", "-c", "IFS=,; X=a,--model=evil/llm; exec vllm serve $X"]},
        {
            "command": ["bash", "-c", "vllm serve acme/llm"],
            "env": [{"name": "BASH_FUNC_vllm%%", "value": "() { :; }"}],
        },
        {
            "command": ["sh", "-c", "vllm serve acme/llm"],
            "envFrom": [{"configMapRef": {"name": "c"}}],
        },
    ],
)
def test_shell_environments_mlbom_does_not_read_are_refused(container):
    assert "shell" in found(container)[1]


@pytest.mark.parametrize(
    "command",
    [
        ["sh", "-c", "command vllm serve evil/llm"],
        ["taskset", "-c", "0-3", "vllm", "serve", "evil/llm"],
        ["time", "-p", "vllm", "serve", "evil/llm"],
        ["numactl", "--cpunodebind=0", "--membind", "0", "vllm", "serve", "evil/llm"],
        ["/usr/bin/time", "-v", "vllm", "serve", "evil/llm"],  # GNU time -v still runs it
        ["timeout", "-v", "--signal=KILL", "-k", "5", "1h", "vllm", "serve", "evil/llm"],
        ["nice", "-n", "5", "chrt", "-r", "10", "vllm", "serve", "evil/llm"],
        ["sh", "-c", "command -v vllm >/dev/null && exec vllm serve evil/llm"],
    ],
)
def test_wrappers_that_only_start_a_program_are_read_through(command):
    assert found({"command": command})[0] == ["hf://evil/llm"]


def test_command_v_only_asks_where_a_program_is():
    assert found(sh("command -v vllm >/dev/null && exec vllm serve acme/llm --revision " + C)) == (
        [f"hf://acme/llm@{C}"],
        set(),
    )


def test_a_runtime_behind_an_unknown_wrapper_is_refused():
    _models, problems = found({"command": ["my-launcher", "--gpus", "all", "vllm", "serve", "evil/llm"]})  # fmt: skip
    assert "ambiguous" in problems


def test_an_ordinary_pods_shell_pipe_is_not_an_inference_pod():
    # a web app's script with a pipe: nothing names a model server, nothing is refused
    pod = PodUnderReview("Pod", {}, {"containers": [{"name": "web", "image": "node:22",
                         "command": ["sh", "-c", "npm run build && npm run serve | tee /tmp/log"]}]}, {})  # fmt: skip
    result = account(pod)
    assert not result.reviewed and not result.all_problems()


def test_limits_in_a_container_that_serves_nothing_change_nothing():
    bundle = "-----BEGIN CERTIFICATE-----\n" + "A" * 100_000
    web = {"name": "web", "image": "nginx:1.27", "env": [{"name": "CA_BUNDLE", "value": bundle}]}
    assert not account(PodUnderReview("Pod", {}, {"containers": [web]}, {})).reviewed
    server = {"name": "vllm", "command": ["vllm", "serve", "acme/llm", "--revision", C],
              "env": [{"name": "X", "value": bundle}]}  # fmt: skip
    assert "scan-limit" in found(server)[1]


def test_a_runtimes_name_as_an_options_value_is_no_server():
    router = {"name": "router", "image": "acme/router:1", "command": ["router", "--backend", "vllm", "--port", "80"]}  # fmt: skip
    assert not account(PodUnderReview("Pod", {}, {"containers": [router]}, {})).reviewed
    assert "ambiguous" in found({"command": ["launcher", "-x", "python3", "-m", "vllm.entrypoints.openai.api_server"]})[1]  # fmt: skip
