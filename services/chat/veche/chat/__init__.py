"""Chat bounded context: history in Redis, REST and WebSocket, fan-out across replicas."""
