"""What happens to a received message: routing, spooling, local delivery. No sockets.

May import queue, store, mailauth, mail, config.
"""
