"""The problems only chat raises (rendered by the common problem+json handlers)."""

from veche.common.errors import Forbidden, NotFound


class NotAuthor(Forbidden):
    code, title = "not_author", "Not the author of this message"


class MessageNotFound(NotFound):
    code, title = "message_not_found", "Message not found"
