"""lightfold's on-server agent: switches releases on the server, in one process per request.

Standard library only (Debian bookworm's python3.11), and it never imports lightfold: configure
uploads the package's files (`bundle.agent_files()`) to /usr/local/lib/lightfold/agent/ and every
agent call runs, as root, `python3 -c '<import agent.main; main()>' [--detach] < request.json`
(`bundle.remote_command()`). The request and reply shapes are in protocol.py, the server's paths
and unit names in layout.py.

Modules, in the order they build on each other:
    layout     every path and unit name on the server (shared with the laptop side)
    core       constants, AgentError, progress events and the reply, `run` (the door to the system)
    files      atomic writes, JSON, symlinks          envfile   systemd's EnvironmentFile syntax
    journal    the releases and their status, audit   lock      the deploy lock
    upstream   nginx's include naming the live slot   health    HTTP checks, listening sockets
    systemd    units, journal tails, nginx reloads    live      app config, what is live, reconcile
    switch     the blue/green switch, cleanup         ops       one function per op
    main       the entry point (and `--detach`)
Laptop side only, never uploaded: bundle (the files and the command), protocol (typed shapes).

The truth about what is live is what nginx routes to (upstream.conf -> slot -> release); the
journal is brought in line with it at the start of every op (`reconciled` in the reply).
"""
