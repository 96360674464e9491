"""The client's resilience kit: circuit breakers, the resilient writer and the schema watch."""
