"""Deploy family: the fleet inventory, preflight checks, publish to a registry, transfer of an image onto
devices (registry pull by digest, or `docker save` streamed into the device's `docker load` over SSH),
the fleet benchmark and `reproduce`.

Devices are reached through their own Docker engine over SSH (`edgebench.deploy.ssh`), host keys always
checked against known_hosts. Heavy modules (docker, paramiko) are imported lazily.
"""
