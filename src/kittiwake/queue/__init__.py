"""Outbound mail: durable entries, retry schedule, remote delivery.

May import store, mailauth, resolver, net, proto.smtp and mail; never delivery.
"""
