#!/bin/bash
# requires: core
# hoist's host library, nginx: the app's nginx file (which color it routes to), running,
# testing and reloading nginx under the host's nginx lock, and probing the app through it.

# shellcheck disable=SC2034 # alone, globals look unused here: other modules and the bodies read them
# The run's nginx: the app's file, the copy of the previous one (`none`: there was none),
# the port nginx listens on, how to run nginx, the host's lock on nginx's configuration (all
# apps': see nginx_hold; on fd 8 once taken), the live color's upstream and the new one's
# ("blue 18080": color and loopback port), and what nginx said last. A function, called where
# this module loads, so that the watchdog sets the same defaults (see watchdog_program).
# (Runs in the watchdog too.)
nginx_globals() {
    BG_CONF=""
    BG_BACKUP=""
    BG_NGINX_PORT=""
    BG_NGINX_BIN=nginx
    BG_NGINX_ARGS=()
    BG_NGINX_LOCK=""
    BG_NGINX_LOCKED=0
    BG_OLD_UPSTREAM=""
    BG_NEW_UPSTREAM=""
    NGINX_OUT=""
    NGINX_CODE=""
    NGINX_SEEN=""
}
nginx_globals

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# nginx is on this host; else, with HOIST_BG_INSTALL_PROXY=true, installs it (dnf, yum —
# on Amazon Linux 2, whose yum has no nginx, from amazon-linux-extras' nginx1 — or apt-get),
# else the run is refused before anything changes. An install through apt-get disables the
# distribution's default site (sites-enabled/default beside the app file's conf.d): it is
# the default server for port 80, which hoist's file is, and a welcome page elsewhere.
bg_require_proxy() {
    if command -v "$BG_NGINX_BIN" >/dev/null; then return 0; fi
    if [[ $HOIST_BG_INSTALL_PROXY != true ]]; then
        finish invalid "nginx is not installed on this host; install it (dnf/yum/apt-get install nginx) or set blue_green.install_proxy: true"
    fi
    log "installing nginx (blue_green.install_proxy: true)"
    local out site
    if command -v dnf >/dev/null; then
        out=$(dnf install -y nginx 2>&1 9>&-) || fail "dnf install nginx failed: $(tail -n 3 <<<"$out")"
    elif command -v yum >/dev/null; then
        if ! out=$(yum install -y nginx 2>&1 9>&-); then
            command -v amazon-linux-extras >/dev/null ||
                fail "yum install nginx failed: $(tail -n 3 <<<"$out")"
            log "yum has no nginx here (Amazon Linux 2): installing amazon-linux-extras' nginx1"
            out=$(amazon-linux-extras install -y nginx1 2>&1 9>&-) ||
                fail "amazon-linux-extras install nginx1 failed: $(tail -n 3 <<<"$out")"
        fi
    elif command -v apt-get >/dev/null; then
        out=$({ DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 nginx ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 nginx; }; } 2>&1 9>&-) ||
            fail "apt-get install nginx failed: $(tail -n 3 <<<"$out")"
        site="${BG_CONF%/*/*}/sites-enabled/default"
        if [[ -e $site || -L $site ]]; then
            rm -f "$site" || fail "could not disable nginx's default site $site"
            log "disabled nginx's default site ($site)"
        fi
    else
        fail "nginx is not installed on this host, and there is no dnf, yum or apt-get to install it with"
    fi
    command -v "$BG_NGINX_BIN" >/dev/null || fail "nginx was installed, but $BG_NGINX_BIN is not on PATH"
}

# Runs nginx (this run's binary and arguments) with $@. Never with the lock's fd 9: an nginx
# it starts lives on, and must not hold the app's lock.
# (Reached through the EXIT trap and the watchdog.)
nginx_run() {
    "$BG_NGINX_BIN" ${BG_NGINX_ARGS[@]+"${BG_NGINX_ARGS[@]}"} "$@" 8>&- 9>&-
}

# Takes the host's lock on nginx's configuration (BG_NGINX_LOCK, shared by every app's deploys,
# rollbacks and restores), held from writing an app's file to the reload that loads it (or to
# putting the previous file back): another app's `nginx -t` or reload never sees a file that
# is being tested and may be taken back. Waits up to 120 s, then goes on with a warning.
# (Reached through the EXIT trap and the watchdog.)
nginx_hold() {
    if ((BG_NGINX_LOCKED)) || [[ -z $BG_NGINX_LOCK ]]; then return 0; fi
    mkdir -p "${BG_NGINX_LOCK%/*}" 2>/dev/null || true
    if ! exec 8>>"$BG_NGINX_LOCK"; then
        warn "cannot open $BG_NGINX_LOCK; changing nginx's configuration without it"
        return 0
    fi
    BG_NGINX_LOCKED=1
    flock -w 120 8 || warn "another run held $BG_NGINX_LOCK for 120s; going on without it"
}

# (Reached through the EXIT trap and the watchdog.)
nginx_let_go() {
    if ((BG_NGINX_LOCKED)); then
        exec 8>&-
        BG_NGINX_LOCKED=0
    fi
}

# `nginx -t` on the whole configuration; NGINX_OUT holds its complaint when it fails.
# (Reached through the EXIT trap and the watchdog.)
nginx_test() {
    local out
    if out=$(nginx_run -t 2>&1); then
        NGINX_OUT=""
        return 0
    fi
    NGINX_OUT=$(grep -E '\[(emerg|alert|crit|error)\]' <<<"$out" | sed 's/^nginx: //' | head -n 3 | tr '\n' ' ' || true)
    NGINX_OUT=${NGINX_OUT% }
    [[ -n $NGINX_OUT ]] || NGINX_OUT=$(tail -n 2 <<<"$out" | tr '\n' ' ')
    return 1
}

# Makes nginx load its files: a graceful reload when it runs (its old workers finish the
# requests they serve, new connections get the new file), else starts it — `systemctl start
# nginx` (and enables it at boot, so that the live color stays reachable after a reboot) where
# systemd runs and the default nginx is used, else the nginx binary itself (it daemonizes; its
# output goes nowhere near this script's). NGINX_OUT says why when it fails.
# (Reached through the EXIT trap and the watchdog.)
nginx_apply() {
    local out tmp
    if nginx_run -s reload </dev/null >/dev/null 2>&1; then return 0; fi
    if [[ $BG_NGINX_BIN == nginx && ${#BG_NGINX_ARGS[@]} -eq 0 && -d /run/systemd/system ]] &&
        command -v systemctl >/dev/null; then
        if ! out=$(systemctl start nginx 2>&1 9>&-); then
            NGINX_OUT="nginx does not run and systemctl start nginx failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
            return 1
        fi
        systemctl is-enabled --quiet nginx 2>/dev/null || systemctl enable --quiet nginx 2>/dev/null ||
            warn "could not enable nginx at boot (systemctl enable nginx)"
    else
        tmp=$(mktemp)
        if ! nginx_run </dev/null >/dev/null 2>"$tmp"; then
            NGINX_OUT="nginx does not run and starting it failed: $(grep -E '\[(emerg|alert|crit)\]' "$tmp" | head -n 2 | tr '\n' ' ' || true)"
            rm -f "$tmp"
            return 1
        fi
        rm -f "$tmp"
    fi
    log "nginx was not running: started it"
}

# The app's nginx file, proxying HOIST_PUBLISH to the color $1 on loopback port $2 (release
# $3, container $4). Names that nginx shares across files (upstream, map variables) carry the
# app's name, so two apps never collide; `-` becomes `_` in variable names (nginx allows no
# `-` there, and an app name has no `_`, so that is one-to-one).
#
# The app's HTTP contract is what a port of its own would give: no body limit unless
# HOIST_BG_MAX_BODY says (bytes, 0: none), reads and writes idle for up to
# HOIST_BG_READ_TIMEOUT seconds (WebSockets, server-sent events, long polls), responses
# streamed as the app writes them (no buffering), IPv6 too where the host has it
# (HOIST_BG_DUAL_STACK), and the app's own answers, 502 and 504 included, passed through.
#
# With $5 (the old color's port, while it still runs: from the switch until the new color is
# verified), the old color is the upstream's backup: a request the new color cannot answer at
# all (no connection within 5 s, or the connection failed or went silent for the whole read
# timeout before a response header) is passed to the old one instead — idempotent ones only,
# as nginx does — so a release that crashes after the switch costs no request before it is
# switched back. Neither color is ever marked down (max_fails=0): an answer, whatever its
# status, is the app's, and the next request goes to the new color again. Probes see which
# one answered ($upstream_addr, the last one tried). Once the new color is verified the file
# is written again without the backup.
bg_conf_text() {
    local color=$1 port=$2 release=$3 name=$4 backup=${5:-} v=${HOIST_APP//-/_}
    local backup_server="" next_upstream="" listen6="" max_body=${HOIST_BG_MAX_BODY:-0}
    local timeout=${HOIST_BG_READ_TIMEOUT:-3600}
    if [[ -n $backup ]]; then
        backup_server="
    server 127.0.0.1:$backup backup max_fails=0;"
        next_upstream="
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;"
    fi
    if bg_ipv6; then
        listen6="
    listen [::]:$BG_NGINX_PORT default_server;"
    fi
    cat <<NGINX
# Written by hoist for app $HOIST_APP (strategy blue-green). Every deploy and rollback of the
# app rewrites this file: do not edit it.
# hoist-live: color=$color port=$port release=$release container=$name

# WebSocket upgrades pass through; other requests send no Connection header, so that the
# connections to the app are kept alive.
map \$http_upgrade \$hoist_${v}_connection {
    default upgrade;
    ''      '';
}

# Which color answered (the address nginx reached last), for hoist's own probes only: those
# that send X-Hoist-Probe from the host itself.
map "\$remote_addr \$http_x_hoist_probe" \$hoist_${v}_upstream {
    default '';
    "~^(127\.0\.0\.1|::1) ." \$upstream_addr;
}

upstream hoist_$HOIST_APP {
    server 127.0.0.1:$port max_fails=0;$backup_server
    keepalive 16;
}

server {
    listen $BG_NGINX_PORT default_server;$listen6
    server_name _;
    client_max_body_size $max_body;

    location / {
        proxy_pass http://hoist_$HOIST_APP;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header X-Forwarded-Host \$host;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$hoist_${v}_connection;
        proxy_buffering off;
        proxy_connect_timeout 5s;
        proxy_send_timeout ${timeout}s;
        proxy_read_timeout ${timeout}s;
        send_timeout ${timeout}s;$next_upstream
        proxy_hide_header X-Hoist-Upstream;
        add_header X-Hoist-Upstream \$hoist_${v}_upstream always;
    }
}
NGINX
}

# Whether nginx also listens on IPv6: HOIST_BG_DUAL_STACK (default true) and the host has
# it (an IPv6 address, ::1 at least; a kernel without IPv6 has none, and nginx could not
# bind [::]).
bg_ipv6() {
    [[ ${HOIST_BG_DUAL_STACK:-true} == true ]] && grep -q . /proc/net/if_inet6 2>/dev/null
}

# One request through nginx to path $1, as hoist's probe: sets NGINX_CODE (000: no answer)
# and NGINX_SEEN (the "color port" that answered; empty when not one of this app's colors).
# (Reached through the EXIT trap and the watchdog.)
bg_look() {
    local out
    out=$(curl --globoff -s -o /dev/null -D - -H 'X-Hoist-Probe: 1' \
        --max-time "$((HOIST_HEALTH_INTERVAL + 2))" "http://127.0.0.1:$BG_NGINX_PORT$1" 2>/dev/null || true)
    out=${out//$'\r'/}
    NGINX_CODE=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' <<<"$out")
    NGINX_CODE=${NGINX_CODE:-000}
    NGINX_SEEN=$(awk 'tolower($1) == "x-hoist-upstream:" { $1 = ""; print; exit }' <<<"$out")
    NGINX_SEEN=${NGINX_SEEN# }
    # The address nginx reached last ("127.0.0.1:20080", or "127.0.0.1:20080, 127.0.0.1:10080"
    # when it passed the request on to the backup), as the color it is; a file written before
    # hoist sent addresses says "<color> <port>" itself.
    if [[ $NGINX_SEEN =~ :([0-9]+)$ ]]; then
        local p=${BASH_REMATCH[1]} u
        NGINX_SEEN="port $p"
        for u in "$BG_NEW_UPSTREAM" "$BG_OLD_UPSTREAM"; do
            if [[ -n $u && ${u#* } == "$p" ]]; then NGINX_SEEN=$u; fi
        done
    fi
}

# Probes the app through nginx (GET path $2 expecting status $3; with no path, GET / and any
# answer but nginx's own 502/504): first until nginx routes to upstream $1 ("color port") —
# a reload takes a moment — for at most $4 seconds; then every probe, for $5 more seconds
# (at least one), must reach $1 and pass. Sets HEALTH, and PROBE_WHY when it fails.
# (Reached through the EXIT trap and the watchdog.)
bg_check_through_nginx() {
    local expect=$1 path=$2 want=${3:-200} confirm=$4 window=$5 deadline
    deadline=$((SECONDS + confirm))
    PROBE_WHY=""
    while :; do
        bg_look "${path:-/}"
        if [[ $NGINX_SEEN == "$expect" ]]; then break; fi
        if ((SECONDS >= deadline)); then
            PROBE_WHY="nginx on port $BG_NGINX_PORT does not route to $expect after ${confirm}s (it answered $NGINX_CODE${NGINX_SEEN:+ from $NGINX_SEEN})"
            return 1
        fi
        sleep 0.2
    done
    deadline=$((SECONDS + window))
    while :; do
        HEALTH="http $NGINX_CODE from ${path:-/} through nginx"
        if [[ $NGINX_SEEN != "$expect" ]]; then
            PROBE_WHY="nginx on port $BG_NGINX_PORT stopped routing to $expect (it answered $NGINX_CODE${NGINX_SEEN:+ from $NGINX_SEEN})"
            return 1
        elif [[ -n $path && $NGINX_CODE != "$want" ]]; then
            PROBE_WHY="GET $path through nginx (port $BG_NGINX_PORT) answered $NGINX_CODE (expected $want)"
            return 1
        elif [[ -z $path && ($NGINX_CODE == 502 || $NGINX_CODE == 504 || $NGINX_CODE == 000) ]]; then
            PROBE_WHY="GET / through nginx (port $BG_NGINX_PORT) answered $NGINX_CODE: nginx cannot reach $expect"
            return 1
        fi
        if ((SECONDS >= deadline)); then return 0; fi
        snooze "$HOIST_HEALTH_INTERVAL"
        bg_look "${path:-/}"
    done
}

# Puts the app's previous nginx file back (or removes the file when there was none).
# (Reached through the EXIT trap and the watchdog.)
bg_restore_conf() {
    case $BG_BACKUP in
        "") return 0 ;;
        none) rm -f "$BG_CONF" ;;
        *) cp -p "$BG_BACKUP" "$BG_CONF.hoist-tmp" && mv -f "$BG_CONF.hoist-tmp" "$BG_CONF" ;;
    esac
}

}
