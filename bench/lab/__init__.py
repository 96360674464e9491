"""The fault lab: a real small shop service healed by a real selfmend, under real faults.

``python -m bench.lab [--quick]`` starts the shop (HTTP, PostgreSQL, a Redis cache, an outside
dependency, its own Celery worker) and ``celery -A workers worker -B`` wired to it only the way
the README tells a user to, drives a daily-shaped load, injects faults after a fault-free
warm-up, and scores what selfmend's store recorded against the faults' ground truth and the
service's own traffic (``score.py``).
"""
