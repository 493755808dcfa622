"""Media bounded context: LiveKit access tokens and LiveKit room lifecycle."""
