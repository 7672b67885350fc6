"""The deploy steps that talk to a server, as the CLI runs them:

    target.py        which target, which project, which server (and the SSH connection to it)
    agent_client.py  requests to the on-server agent (JSON in, JSON out, progress events)
    configure.py     `configure`: facts, the plan from lightfold.server, skip when unchanged
    push.py          `push`: fingerprint → lock → upload → build → env snapshot → activate
    deploy.py        `deploy`: detect → create → configure → push, each skipped when done

Each function returns a small result object; rendering is the CLI's job.
"""
