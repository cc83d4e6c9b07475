"""Live events over Socket.IO, served by the API itself.

`server.py` decides who may connect and which rooms each socket joins; `relay.py` listens on
PostgreSQL for the events that committed transitions publish and hands each to the server,
which emits it to its own sockets. Every replica does both, so no broker sits between them.
"""
