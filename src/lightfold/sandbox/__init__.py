"""Local sandbox machines: Debian servers booted with systemd-nspawn on this host.

This package owns everything the `local` provider does to the host: the cached base image
(image.py), where the host's package registries are (registries.py), the host-only bridge, network
namespaces and NAT (network.py), the registry proxy (proxy.py) and a machine's whole life — boot,
stop, wipe, inspect (machine.py). Names, paths and the subnet are in layout.py; host checks and the
command runner are in host.py. Nothing here speaks SSH (that is lightfold.remote) and nothing here
reads config.json (that is lightfold.providers.local).
"""
