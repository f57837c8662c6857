"""The lab: local stand-ins for a CircleCI Server world (Kubernetes, AWS, GCP, Nomad).

Every playbook of the collection runs end to end against it, in the tests and in `make demo`.
All servers listen on 127.0.0.1 only, on free ports, inside one lab process that `python -m tests.lab`
starts and stops by PID. Each stand-in's module docstring says what it stands in for and what it
does not model.
"""
