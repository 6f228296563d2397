#!/bin/sh
# wpprotect test simulator of the Datadog Agent CLI around Workload Protection (CWS).
#
# One POSIX sh script installed three times (copies or links) as `security-agent`, `system-probe`
# and `agent`; it dispatches on the name it was run as. Console strings, prompts, exit codes and
# archive names follow docs/reference/agent-cli.md (anchors cited below).
# Runs under busybox sh (FROM scratch images) and /bin/sh on a host. See __init__.py for how to
# install it and which WPSIM_* variables select the version and the outcomes.

# Rewritten by the Python installer when the config file lives elsewhere (host installs).
WPSIM_CONF_DEFAULT=/etc/wpprotect-sim/env

conf=${WPSIM_CONF:-$WPSIM_CONF_DEFAULT}
if [ -r "$conf" ]; then
    # shellcheck disable=SC1090
    . "$conf"
fi
simdir=$(dirname "$conf")

: "${WPSIM_VERSION:=7.50.3}"
: "${WPSIM_COMMIT:=1a2b3c4}"
: "${WPSIM_SELFTEST:=ok}"
: "${WPSIM_SELFTEST_TESTS:=datadog_agent_cws_self_test_rule_open datadog_agent_cws_self_test_rule_chmod datadog_agent_cws_self_test_rule_chown}"
: "${WPSIM_SELFTEST_FAILED:=}"
: "${WPSIM_STATUS:=ok}"
: "${WPSIM_CWS_ENABLED:=true}"
: "${WPSIM_FLARE_TEMPLATE:=$simdir/flare-template.zip}"
: "${WPSIM_FLARE_TEMPLATE_LOCAL:=$simdir/flare-template-local.zip}"
: "${WPSIM_UPLOAD:=ok}"
: "${WPSIM_NEW_CASE_ID:=1234567}"
: "${WPSIM_STATE_DIR:=$simdir/state}"
: "${WPSIM_HANG_SECONDS:=3600}"
: "${WPSIM_API_KEY_END:=abcde}"
: "${WPSIM_AGENT_RUNNING:=1}"

prog=$(basename "$0")

if [ -n "${WPSIM_TMPDIR:-}" ]; then
    TMPDIR=$WPSIM_TMPDIR
    export TMPDIR
fi

if [ -n "${WPSIM_LOG:-}" ]; then
    { printf '%s' "$prog"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; } >>"$WPSIM_LOG" 2>/dev/null
fi

# --- version helpers ---------------------------------------------------------------------------
v_major=${WPSIM_VERSION%%.*}
v_rest=${WPSIM_VERSION#*.}
v_minor=${v_rest%%.*}
v_patch=${v_rest#*.}
v_patch=${v_patch%%[!0-9]*}

# at_least MAJOR MINOR: the simulated version is >= MAJOR.MINOR
at_least() {
    [ "$v_major" -gt "$1" ] && return 0
    [ "$v_major" -eq "$1" ] && [ "$v_minor" -ge "$2" ]
}

# The Helm chart and the Operator still run the security-agent by default at every version
# (docs/reference/agent-cli.md#cli-security-agent-presence); WPSIM_DEPLOY=direct-send models
# directSendFromSystemProbe, which removes it.
: "${WPSIM_DEPLOY:=default}"
: "${WPSIM_SECURITY_AGENT_RUNNING:=1}"
: "${WPSIM_FLARE_LOCAL:=ok}"
: "${WPSIM_VERSION_ANSWER:=ok}"
: "${WPSIM_DAEMON_SECONDS:=3600}"

# Cobra's answer to an unknown subcommand, printed by runcmd with exit status -1 (255)
# (docs/reference/agent-cli.md#cli-runtime-binary: an inference for >= 7.67).
unknown_command() {
    # $1 = command word, $2 = root command name
    echo "Error: unknown command \"$1\" for \"$2\"" >&2
    echo "Run '$2 --help' for usage." >&2
    exit 255
}

fail() {
    # runcmd prints the returned error as "Error: <msg>" on stderr and exits -1 (255).
    echo "Error: $*" >&2
    exit 255
}

# --- version -----------------------------------------------------------------------------------
# Simulator assumption (docs/reference/agent-cli.md does not record it): "<Name> X.Y.Z - Commit: <sha> -
# Serialization version: v5.0.97 - Go version: go1.21.5".
print_version() {
    case "$WPSIM_VERSION_ANSWER" in
        unreadable) echo "$1 (development build) - Commit: none - Go version: unknown" ;;
        hang) exec sleep "$WPSIM_HANG_SECONDS" ;;
        *) echo "$1 $WPSIM_VERSION - Commit: $WPSIM_COMMIT - Serialization version: v5.0.97 - Go version: go1.21.5" ;;
    esac
}

# --- old system-probe: the daemon in the foreground (docs/reference/agent-cli.md#cli-old-system-probe)
# Before PR #16039 (about 7.45) an unknown first argument was rewritten to `run`; before PR #7859
# (about 7.29) system-probe used plain Go flags and any argument ran the daemon. The simulator
# prints a start line (its wording is an assumption), appends the argv to
# $WPSIM_STATE_DIR/daemon-started for the tests, and stays in the foreground like the daemon.
start_daemon() {
    mkdir -p "$WPSIM_STATE_DIR" 2>/dev/null
    { printf 'system-probe'; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; } \
        >>"$WPSIM_STATE_DIR/daemon-started" 2>/dev/null
    echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') | SYS-PROBE | INFO | (cmd/system-probe/subcommands/run/command.go) | starting system-probe v$WPSIM_VERSION"
    if [ "$WPSIM_DAEMON_SECONDS" != 0 ]; then exec sleep "$WPSIM_DAEMON_SECONDS"; fi
    exit 0
}

# --- runtime self-test (docs/reference/agent-cli.md#cli-self-test-output) ---------------------
record_selftest() {
    mkdir -p "$WPSIM_STATE_DIR" 2>/dev/null || return 0
    succeeded=""
    for t in $WPSIM_SELFTEST_TESTS; do
        case " $WPSIM_SELFTEST_FAILED " in
            *" $t "*) ;;
            *) succeeded="$succeeded $t" ;;
        esac
    done
    {
        echo "last=$(date -u '+%d %b %y %H:%M UTC')"
        echo "succeeded=$succeeded"
        echo "failed=$WPSIM_SELFTEST_FAILED"
    } >"$WPSIM_STATE_DIR/selftest" 2>/dev/null
}

runtime_cmd() {
    # $1 = root command name; remaining args = runtime subcommand and its args
    root=$1
    shift
    case "${1:-}" in
        self-test)
            # The real RPC takes a moment (events are generated, then matched).
            if [ -n "${WPSIM_SELFTEST_DELAY:-}" ]; then sleep "$WPSIM_SELFTEST_DELAY"; fi
            case "$WPSIM_SELFTEST" in
                ok)
                    record_selftest
                    echo "Runtime self test: OK"
                    ;;
                disabled) echo "Runtime self test: error: self-tests are disabled" ;;
                busy) echo "Runtime self test: error: channel is already full, self test is already running" ;;
                ebpfless) echo "Runtime self test: error: self-tests through gRPC are not supported with eBPF less" ;;
                unavailable)
                    fail "unable to get a process self test: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /opt/datadog-agent/run/runtime-security.sock: connect: no such file or directory\""
                    ;;
                noclient)
                    fail "unable to create a runtime security client instance: runtime_security_config.socket must be set"
                    ;;
                hang)
                    # The RPC has no client-side deadline (docs/reference/agent-cli.md#cli-self-test-transport).
                    exec sleep "$WPSIM_HANG_SECONDS"
                    ;;
                *) fail "wpprotect-sim: unknown WPSIM_SELFTEST=$WPSIM_SELFTEST" ;;
            esac
            exit 0
            ;;
        "")
            echo "Runtime Security Agent (CWS) utility commands"
            exit 0
            ;;
        *) unknown_command "$1" "$root runtime" ;;
    esac
}

# --- status (docs/reference/agent-cli.md#cli-status) ------------------------------------------
status_cmd() {
    echo "Getting the status from the agent."
    if [ "$WPSIM_SECURITY_AGENT_RUNNING" != 1 ] || [ "$WPSIM_STATUS" = unreachable ]; then
        echo "Could not reach security agent: Get \"https://localhost:5010/agent/status?format=text\": dial tcp 127.0.0.1:5010: connect: connection refused"
        echo "Make sure the agent is running before requesting the status."
        echo "Contact support if you continue having issues."
        fail "Get \"https://localhost:5010/agent/status?format=text\": dial tcp 127.0.0.1:5010: connect: connection refused"
    fi
    last="01 Jan 25 00:00 UTC"
    succeeded=""
    failed=$WPSIM_SELFTEST_FAILED
    for t in $WPSIM_SELFTEST_TESTS; do
        case " $WPSIM_SELFTEST_FAILED " in
            *" $t "*) ;;
            *) succeeded="$succeeded $t" ;;
        esac
    done
    if [ -r "$WPSIM_STATE_DIR/selftest" ]; then
        while IFS= read -r line; do
            case "$line" in
                last=*) last=${line#last=} ;;
                succeeded=*) succeeded=${line#succeeded=} ;;
                failed=*) failed=${line#failed=} ;;
            esac
        done <"$WPSIM_STATE_DIR/selftest"
    fi
    cat <<EOF

==============================
Security Agent (v$WPSIM_VERSION)
==============================

  Status date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
  Agent start: 2025-01-01 00:00:00 UTC
  Pid: 4242
  Go Version: go1.21.5
  Python Version: n/a

=========
Compliance
=========

  Not enabled

================
Runtime Security
================

EOF
    if [ "$WPSIM_CWS_ENABLED" != true ]; then
        echo "  Not enabled"
        exit 0
    fi
    cat <<EOF
  Connected: true
  Events received: 42

  Self Tests
  ==========

    Last execution: $last

EOF
    if [ -n "$(echo $succeeded)" ]; then
        echo "    Succeeded:"
        for t in $succeeded; do echo "      - $t"; done
    else
        echo "    Succeeded: none"
    fi
    echo
    if [ -n "$(echo $failed)" ]; then
        echo "    Failed:"
        for t in $failed; do echo "      - $t"; done
    else
        echo "    Failed: none"
    fi
    cat <<EOF

  Policies
  ========

    Policy:
      Name: default.policy
      Source: file
      Rules:
        - ID: datadog_agent_cws_self_test_rule_open
          Status: loaded

  SECL Variables
  ==============

    No variable found

  Environment
  ===========

    Kernel lockdown: none
    Use eBPF mmapable maps: true
    Use eBPF ring buffer: true
EOF
    exit 0
}

# --- flare (docs/reference/agent-cli.md#cli-flare-command to #cli-flare-archive) ---------------
flare_cmd() {
    # $1 = flavour: "security" (security-agent flare) or "core" (agent flare)
    flavour=$1
    shift
    case_id=""
    email=""
    have_email=0
    send=0
    local_flag=0
    while [ $# -gt 0 ]; do
        case "$1" in
            -e | --email)
                [ $# -ge 2 ] || fail "flag needs an argument: '${1#-}' in $1"
                email=$2; have_email=1; shift 2; continue ;;
            --email=*) email=${1#--email=}; have_email=1 ;;
            -e=*) email=${1#-e=}; have_email=1 ;;
            -s | --send) send=1 ;;
            -l | --local)
                [ "$flavour" = core ] || fail "unknown shorthand flag: 'l' in -l"
                local_flag=1 ;;
            --) shift; break ;;
            -*) fail "unknown flag: $1" ;;
            *) case_id=$1 ;;
        esac
        shift
    done
    # No argument-count check (docs/reference/agent-cli.md#cli-flare-command): the last one wins.
    while [ $# -gt 0 ]; do case_id=$1; shift; done

    if [ "$have_email" = 0 ]; then
        # input.AskForEmail: fmt.Println, so the answer is read on the next line.
        echo "Please enter your email: "
        # A new bufio.Scanner per prompt: EOF is an empty answer, not an error
        # (docs/reference/agent-cli.md#cli-flare-output).
        IFS= read -r email || true
        email=$(echo "$email" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    fi

    template=$WPSIM_FLARE_TEMPLATE
    if [ "$flavour" = security ]; then
        echo "Asking the Security Agent to build the flare archive."
        if [ "$WPSIM_SECURITY_AGENT_RUNNING" != 1 ]; then
            echo "The agent was unable to make a full flare: Post \"https://localhost:5010/agent/flare\": dial tcp 127.0.0.1:5010: connect: connection refused."
            echo "Initiating flare locally, some logs will be missing."
            template=$WPSIM_FLARE_TEMPLATE_LOCAL
            if [ "$WPSIM_FLARE_LOCAL" != ok ]; then
                echo "The flare zipfile failed to be created: unable to read the security-agent runtime configuration"
                fail "unable to read the security-agent runtime configuration"
            fi
        fi
    else
        echo "NEW: You can now generate a flare from the comfort of your Datadog UI!"
        echo "See https://docs.datadoghq.com/agent/troubleshooting/send_a_flare/?tab=agent#send-a-flare-from-the-datadog-site for more info."
        if [ "$local_flag" = 1 ]; then
            echo "Initiating flare locally."
            template=$WPSIM_FLARE_TEMPLATE_LOCAL
        else
            echo "Asking the agent to build the flare archive."
            if [ "$WPSIM_AGENT_RUNNING" != 1 ]; then
                echo "The agent was unable to make the flare. (is it running?)"
                echo "Initiating flare locally."
                template=$WPSIM_FLARE_TEMPLATE_LOCAL
            fi
        fi
    fi
    [ -r "$template" ] || template=$WPSIM_FLARE_TEMPLATE
    [ -r "$template" ] || fail "wpprotect-sim: no flare template at $template"

    # Name: datadog-agent-<UTC RFC3339 with ':' -> '-'>-<loglevel>.zip in os.TempDir()
    # (comp/core/flare/helpers/builder.go, docs/reference/agent-cli.md#cli-flare-archive).
    # Older agents (pkg/flare) used the Go layout 2006-01-02-15-04-05 with no level suffix. The
    # release that changed it is not pinned: the simulator switches at 7.45 unless
    # WPSIM_FLARE_NAME (rfc3339 | legacy) says otherwise.
    tmp=${TMPDIR:-/tmp}
    if [ -z "${WPSIM_FLARE_NAME:-}" ]; then
        if at_least 7 45; then WPSIM_FLARE_NAME=rfc3339; else WPSIM_FLARE_NAME=legacy; fi
    fi
    if [ "$WPSIM_FLARE_NAME" = legacy ]; then
        archive="$tmp/datadog-agent-$(date '+%Y-%m-%d-%H-%M-%S').zip"
    else
        archive="$tmp/datadog-agent-$(date -u '+%Y-%m-%dT%H-%M-%SZ')-info.zip"
    fi
    cp "$template" "$archive" || fail "The flare zipfile failed to be created: cannot write $archive"
    chmod 600 "$archive" 2>/dev/null

    echo "$archive is going to be uploaded to Datadog"
    if [ "$send" != 1 ]; then
        # input.AskForConfirmation: only y or Y confirms.
        echo "Are you sure you want to upload a flare? [y/N]"
        answer=""
        IFS= read -r answer || true
        answer=$(echo "$answer" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
        case "$answer" in
            y | Y) ;;
            *)
                echo "Aborting. (You can still use $archive)"
                exit 0
                ;;
        esac
    fi

    # Upload (docs/reference/agent-cli.md#cli-flare-upload); the simulator never touches the network.
    case "$WPSIM_UPLOAD" in
        ok)
            cid=${case_id:-$WPSIM_NEW_CASE_ID}
            echo "Your logs were successfully uploaded. For future reference, your internal case id is $cid"
            exit 0
            ;;
        forbidden)
            echo
            fail "HTTP 403 Forbidden: Make sure your API key is valid. API Key ending with: $WPSIM_API_KEY_END"
            ;;
        *)
            echo
            fail "HTTP 500 Internal Server Error"
            ;;
    esac
}

# --- dispatch ----------------------------------------------------------------------------------
case "$prog" in
    security-agent | datadog-security-agent)
        if [ "$WPSIM_DEPLOY" = direct-send ]; then
            # No security-agent at all: as a shell (and `docker exec`) reports a missing binary.
            echo "sh: $prog: not found" >&2
            exit 127
        fi
        root=datadog-security-agent
        cmd=${1:-}
        [ $# -gt 0 ] && shift
        case "$cmd" in
            version) print_version "Security agent"; exit 0 ;;
            status) status_cmd ;;
            flare) flare_cmd security "$@" ;;
            runtime)
                # Deprecated in 7.66 (PR #35703), removed in 7.67 (PR #36367):
                # docs/reference/agent-cli.md#cli-runtime-binary.
                if at_least 7 67; then unknown_command runtime "$root"; fi
                if at_least 7 66; then
                    echo 'Command "runtime" is deprecated, please use `system-probe runtime` instead' >&2
                fi
                runtime_cmd "$root" "$@"
                ;;
            "") echo "Datadog Security Agent"; exit 0 ;;
            *) unknown_command "$cmd" "$root" ;;
        esac
        ;;
    system-probe)
        if [ $# -gt 0 ] && ! at_least 7 29; then start_daemon "$@"; fi
        if ! at_least 7 45; then
            case "${1:-}" in
                version | run | config | help | "") ;;
                *) start_daemon "$@" ;;
            esac
        fi
        cmd=${1:-}
        [ $# -gt 0 ] && shift
        case "$cmd" in
            version) print_version "System Probe"; exit 0 ;;
            runtime)
                # Added in 7.56 (PR #27016): docs/reference/agent-cli.md#cli-runtime-binary.
                at_least 7 56 || unknown_command runtime system-probe
                runtime_cmd system-probe "$@"
                ;;
            run) start_daemon run "$@" ;;
            "") echo "Datadog System Probe"; exit 0 ;;
            *) unknown_command "$cmd" system-probe ;;
        esac
        ;;
    agent)
        cmd=${1:-}
        [ $# -gt 0 ] && shift
        case "$cmd" in
            version) print_version "Agent"; exit 0 ;;
            flare) flare_cmd core "$@" ;;
            "") echo "Datadog Agent"; exit 0 ;;
            *) unknown_command "$cmd" agent ;;
        esac
        ;;
    *)
        fail "wpprotect-sim: run as security-agent, system-probe or agent, not $prog"
        ;;
esac
