// Every user-visible string of the client, in English and Russian.
// The language is the one chosen with the switch in the top bar (localStorage `veche.lang`),
// else it follows navigator.language: ru* gets Russian, everything else English.

const en = {
  'app.name': 'Veche',
  'app.tagline': 'Meet by link. No accounts, no sign-up.',
  'app.language': 'Language',

  'home.create.heading': 'Start a meeting',
  'home.create.title': 'Meeting title',
  'home.create.title.placeholder': 'Weekly sync',
  'home.create.description': 'Description (optional)',
  'home.create.description.placeholder': 'What is this meeting about?',
  'home.create.max': 'Max participants',
  'home.create.max.hint': 'From 2 to 100',
  'home.create.name': 'Your name',
  'home.create.submit': 'Create meeting',
  'home.create.busy': 'Creating…',
  'home.join.heading': 'Join a meeting',
  'home.join.label': 'Meeting link or ID',
  'home.join.placeholder': 'https://…/r/… or the meeting ID',
  'home.join.submit': 'Join',
  'home.join.invalid': 'That is not a meeting link or ID.',
  'home.privacy':
    'No account is created. Your browser keeps a random key that identifies you in the meetings you join.',

  'name.placeholder': 'How others will see you',
  'name.required': 'Enter your name.',

  'prejoin.name': 'Your name',
  'prejoin.submit': 'Join meeting',
  'prejoin.busy': 'Joining…',
  'prejoin.count': '{count} of {max} in the meeting',
  'prejoin.full': 'The meeting is full. Join becomes available when someone leaves.',
  'prejoin.preview.off': 'Camera is off',
  'prejoin.preview.starting': 'Starting camera…',
  'prejoin.devices.failed': 'Camera and microphone are not available ({reason}). You can still join and chat.',
  'prejoin.devices.insecure': 'This page is not opened over HTTPS, so the browser does not offer camera or microphone.',
  'prejoin.back': 'Back to home',

  'media.mic.on': 'Mute microphone',
  'media.mic.off': 'Unmute microphone',
  'media.cam.on': 'Turn camera off',
  'media.cam.off': 'Turn camera on',
  'media.screen.on': 'Stop sharing',
  'media.screen.off': 'Share screen',
  'media.mic': 'Microphone',
  'media.cam': 'Camera',
  'media.screen': 'Screen',
  'media.mic.name': 'Microphone',
  'media.cam.name': 'Camera',
  'media.screen.name': 'Screen sharing',
  'media.unavailable': 'Video is unavailable',
  'media.unavailable.detail': 'Chat and the participant list still work.',
  'media.retry': 'Try video again',
  'media.connecting': 'Connecting video…',
  'media.reconnecting': 'Video is reconnecting…',
  'media.disconnected': 'Video disconnected',
  'media.enableAudio': 'Click to hear the others',
  'media.you': 'You',
  'media.muted': 'microphone muted',
  'media.screenOf': '{name} (screen)',
  'media.deviceError': 'Could not use camera or microphone: {reason}',
  'media.alone': 'You are the only one here. Share the link to invite others.',
  'media.mutedByHost': 'The host muted your {kind}.',
  'media.kind.audio': 'microphone',
  'media.kind.video': 'camera',

  'device.denied': 'access was not allowed',
  'device.notFound': 'no device found',
  'device.busy': 'the device is used by another program',
  'device.other': 'the browser does not offer them',

  'room.copy': 'Copy link',
  'room.copied': 'Copied',
  'room.copy.manual': 'Copy the link from the box (Ctrl+C).',
  'room.link': 'Meeting link',
  'room.leave': 'Leave',
  'room.end': 'End meeting for all',
  'room.participants': 'Participants',
  'room.chat': 'Chat',
  'room.you': 'you',
  'room.host': 'host',
  'room.kick': 'Remove',
  'room.kick.title': 'Remove {name} from the meeting',
  'room.kick.label': 'Remove {name}',
  'room.muteAudio': 'Mute',
  'room.muteAudio.title': 'Mute the microphone of {name}',
  'room.muteAudio.label': 'Mute {name}',
  'room.muteVideo': 'Stop video',
  'room.muteVideo.title': 'Turn off the camera of {name}',
  'room.muteVideo.label': 'Stop video of {name}',
  'room.kicked.ok': '{name} was removed.',
  'room.muted.ok': 'Done.',
  'room.speaking': 'speaking',
  'confirm.cancel': 'Cancel',
  'shortcuts.button': 'Keyboard shortcuts',
  'shortcuts.title': 'Keyboard shortcuts',
  'shortcuts.mic': 'Turn the microphone on or off',
  'shortcuts.camera': 'Turn the camera on or off',
  'shortcuts.chat': 'Show or hide the chat',
  'shortcuts.hand': 'Raise or lower your hand',
  'shortcuts.help': 'Show this list',
  'shortcuts.note': 'The keys work when you are not typing in a text field, in any keyboard layout.',
  'shortcuts.close': 'Close',
  'confirm.stay': 'Stay',
  'confirm.leave.title': 'Leave the meeting?',
  'confirm.leave.text': 'You can come back with the same link while the meeting goes on.',
  'confirm.end.title': 'End the meeting for everyone?',
  'confirm.end.text': 'Everyone is disconnected, and the meeting cannot be opened again.',
  'confirm.kick.title': 'Remove {name}?',
  'confirm.kick.text': '{name} leaves the meeting and cannot join it again with this link.',

  'chat.placeholder': 'Message everyone',
  'chat.log': 'Chat messages',
  'chat.close': 'Hide the chat',
  'chat.unread': {
    one: '{count} unread message',
    other: '{count} unread messages',
  },
  'chat.send': 'Send',
  'chat.edit': 'Edit',
  'chat.delete': 'Delete',
  'chat.deleted': 'Message deleted.',
  'chat.undo': 'Undo',
  'chat.save': 'Save',
  'chat.cancel': 'Cancel',
  'chat.edited': 'edited',
  'system.joined': '{name} joined',
  'system.left': '{name} left',
  'system.removed': '{name} was removed by the host',
  'system.timedOut': '{name} left (connection lost)',
  'system.hostChanged': '{name} is now the host',
  'system.roomEnded': 'The meeting has ended',
  'chat.empty': 'No messages yet. Say hello!',
  'chat.older': 'Show earlier messages',
  'chat.connecting': 'Connecting…',
  'chat.offline': 'Chat is reconnecting — messages may be delayed',
  'chat.notSent': 'The message was not sent: {reason}',
  'chat.noAck': 'No confirmation from the server. The message may not have been sent.',
  'chat.slowDown': 'too many messages, slow down a little',

  'screen.home': 'Go to home page',
  'screen.retry': 'Try again',
  'screen.notFound.title': 'Meeting not found',
  'screen.notFound.text': 'Check the link. The meeting may have expired.',
  'screen.full.title': 'The meeting is full',
  // Plural forms by Intl.PluralRules category of {max}.
  'screen.full.text': {
    one: 'The only place is taken. Try again when someone leaves.',
    other: 'All {max} places are taken. Try again when someone leaves.',
  },
  'screen.full.textNoMax': 'All places are taken. Try again when someone leaves.',
  'screen.ended.title': 'The meeting has ended',
  'screen.ended.text': 'Thanks for taking part.',
  'screen.endedBeforeJoin.title': 'This meeting ended before you joined',
  'screen.endedBeforeJoin.text': 'The host ended it, or everyone had left. Ask for a new link to meet.',
  'screen.kicked.title': 'You were removed from this meeting',
  'screen.kicked.text': 'The host removed you. You cannot join this meeting again.',
  'screen.rateLimited.title': 'Too many requests',
  'screen.rateLimited.text': 'Too many requests, try again in {seconds} s.',
  'screen.rateLimited.ready': 'You can try again now.',
  'screen.error.title': 'Something went wrong',
  'screen.error.text': 'The service did not answer. Check your connection and try again.',

  'error.network': 'no connection to the server',
  'error.generic': 'the server answered with an error ({status})',
  'error.unavailable': 'the service is temporarily unavailable',
  'error.rate_limited': 'too many requests, try again in {seconds} s',
  'error.not_host': 'only the host can do that',
  'error.not_author': 'you can only edit your own messages',
  'error.participant_not_found': 'that participant is no longer here',
  'error.message_not_found': 'that message no longer exists',
  'error.validation_error': 'please check the form',
  'error.not_a_participant': 'you are not in this meeting any more',

  'home.create.e2ee': 'End-to-end encrypted',
  'home.create.e2ee.hint':
    'Video, sound and chat are encrypted in the browsers, with a key that is only in the meeting link. '
    + 'The meeting title and the names of the people are not encrypted.',
  'home.create.e2ee.unavailable': 'Encryption needs the page to be opened over HTTPS.',

  'lobby.waiting.title': 'Waiting for the host to let you in',
  'lobby.waiting.text': 'The host knows you are here. You will be let in as soon as they admit you.',
  'lobby.cancel': 'Cancel',
  'lobby.heading': 'Waiting to join',
  'lobby.request': '{name} wants to join',
  'lobby.admit': 'Admit',
  'lobby.deny': 'Deny',
  'lobby.admit.label': 'Admit {name}',
  'lobby.deny.label': 'Deny {name}',
  'lobby.badge': {
    one: '{count} person is waiting to join',
    other: '{count} people are waiting to join',
  },
  'lobby.notice': '{name} is waiting to join',

  'settings.button': 'Room settings',
  'settings.heading': 'Room settings',
  'settings.locked': 'Lock the meeting',
  'settings.locked.hint': 'Nobody new can join. People already here stay.',
  'settings.lobby': 'Waiting room',
  'settings.lobby.hint': 'New people wait until a host lets them in.',
  'settings.sound': 'Sound when someone knocks',
  'settings.close': 'Close room settings',
  'room.status.locked': 'Locked',
  'room.status.lobby': 'Waiting room',
  'room.status.e2ee': 'End-to-end encrypted',

  'room.promote.title': 'Make {name} a host',
  'room.promote.label': 'Make {name} a host',
  'room.demote.title': 'Take host rights from {name}',
  'room.demote.label': 'Take host rights from {name}',
  'room.stepDown.title': 'Stop being a host',
  'room.stepDown.label': 'Stop being a host',
  'room.promoted.ok': '{name} is now a host.',
  'room.demoted.ok': '{name} is no longer a host.',
  'room.youPromoted': 'You are now a host.',
  'room.youDemoted': 'You are no longer a host.',
  'room.lastHost': 'You are the only host. Make someone else a host first.',
  'room.hand': 'Hand raised',
  'room.handOf': '{name} raised a hand',

  'media.hand': 'Hand',
  'media.hand.name': 'Raise hand',
  'media.hand.on': 'Lower your hand',
  'media.hand.off': 'Raise your hand',
  'media.e2ee.noKey': 'The video of this meeting is end-to-end encrypted, and your link has no key for it.',
  'media.e2ee.unsupported': 'This browser cannot take part in end-to-end encrypted video.',
  'media.e2ee.cannotDecrypt': 'Cannot decrypt this video',

  'e2ee.noKey': 'This meeting is end-to-end encrypted. Ask for the full link, including the part after #.',
  'e2ee.wrongKey':
    'The key in your link does not open this meeting. '
    + 'This meeting is end-to-end encrypted. Ask for the full link, including the part after #.',
  'chat.undecryptable': 'Encrypted message (cannot be read with your link)',
  'chat.noKey': 'The chat is end-to-end encrypted: you need the full link to read and write.',
  'chat.tooLong': 'the message is too long',

  'screen.denied.title': 'The host did not let you in',
  'screen.denied.text': 'Your request to join this meeting was declined.',
  'prejoin.locked': 'This meeting is locked: the host is not letting anyone new in right now.',
  'error.room_locked': 'the meeting is locked',
  'error.lobby_denied': 'the host did not let you in',
  'error.last_host': 'you are the only host',
  'error.already_resolved': 'another host has already answered',
  'error.request_not_found': 'this request is no longer waiting',
  'error.room_full': 'the meeting is full',
};

const ru = {
  'app.name': 'Вече',
  'app.tagline': 'Встречи по ссылке. Без аккаунтов и регистрации.',
  'app.language': 'Язык',

  'home.create.heading': 'Начать встречу',
  'home.create.title': 'Название встречи',
  'home.create.title.placeholder': 'Еженедельный созвон',
  'home.create.description': 'Описание (необязательно)',
  'home.create.description.placeholder': 'О чём эта встреча?',
  'home.create.max': 'Максимум участников',
  'home.create.max.hint': 'От 2 до 100',
  'home.create.name': 'Ваше имя',
  'home.create.submit': 'Создать встречу',
  'home.create.busy': 'Создаём…',
  'home.join.heading': 'Присоединиться',
  'home.join.label': 'Ссылка или ID встречи',
  'home.join.placeholder': 'https://…/r/… или ID встречи',
  'home.join.submit': 'Войти',
  'home.join.invalid': 'Это не похоже на ссылку или ID встречи.',
  'home.privacy':
    'Аккаунт не создаётся. Браузер хранит случайный ключ, по которому вас узнают во встречах, куда вы вошли.',

  'name.placeholder': 'Как вас увидят другие',
  'name.required': 'Введите имя.',

  'prejoin.name': 'Ваше имя',
  'prejoin.submit': 'Войти во встречу',
  'prejoin.busy': 'Входим…',
  'prejoin.count': 'Во встрече {count} из {max}',
  'prejoin.full': 'Во встрече нет мест. Войти можно будет, когда кто-нибудь выйдет.',
  'prejoin.preview.off': 'Камера выключена',
  'prejoin.preview.starting': 'Включаем камеру…',
  'prejoin.devices.failed': 'Камера и микрофон недоступны ({reason}). Войти и писать в чат всё равно можно.',
  'prejoin.devices.insecure': 'Страница открыта не по HTTPS, поэтому браузер не даёт доступа к камере и микрофону.',
  'prejoin.back': 'На главную',

  'media.mic.on': 'Выключить микрофон',
  'media.mic.off': 'Включить микрофон',
  'media.cam.on': 'Выключить камеру',
  'media.cam.off': 'Включить камеру',
  'media.screen.on': 'Остановить показ',
  'media.screen.off': 'Показать экран',
  'media.mic': 'Микрофон',
  'media.cam': 'Камера',
  'media.screen': 'Экран',
  'media.mic.name': 'Микрофон',
  'media.cam.name': 'Камера',
  'media.screen.name': 'Показ экрана',
  'media.unavailable': 'Видео недоступно',
  'media.unavailable.detail': 'Чат и список участников работают.',
  'media.retry': 'Попробовать снова',
  'media.connecting': 'Подключаем видео…',
  'media.reconnecting': 'Видео переподключается…',
  'media.disconnected': 'Видео отключено',
  'media.enableAudio': 'Нажмите, чтобы слышать остальных',
  'media.you': 'Вы',
  'media.muted': 'микрофон выключен',
  'media.screenOf': '{name} (экран)',
  'media.deviceError': 'Не удалось включить камеру или микрофон: {reason}',
  'media.alone': 'Вы здесь одни. Отправьте ссылку, чтобы пригласить остальных.',
  'media.mutedByHost': 'Организатор выключил ваш {kind}.',
  'media.kind.audio': 'микрофон',
  'media.kind.video': 'видеосигнал',

  'device.denied': 'доступ не разрешён',
  'device.notFound': 'устройство не найдено',
  'device.busy': 'устройство занято другой программой',
  'device.other': 'браузер их не предоставляет',

  'room.copy': 'Скопировать ссылку',
  'room.copied': 'Скопировано',
  'room.copy.manual': 'Скопируйте ссылку из поля (Ctrl+C).',
  'room.link': 'Ссылка на встречу',
  'room.leave': 'Выйти',
  'room.end': 'Завершить для всех',
  'room.participants': 'Участники',
  'room.chat': 'Чат',
  'room.you': 'вы',
  'room.host': 'организатор',
  'room.kick': 'Удалить',
  'room.kick.title': 'Удалить {name} со встречи',
  'room.kick.label': 'Удалить: {name}',
  'room.muteAudio': 'Без звука',
  'room.muteAudio.title': 'Выключить микрофон: {name}',
  'room.muteAudio.label': 'Без звука: {name}',
  'room.muteVideo': 'Без видео',
  'room.muteVideo.title': 'Выключить камеру: {name}',
  'room.muteVideo.label': 'Без видео: {name}',
  'room.kicked.ok': '{name} удалён(а) со встречи.',
  'room.muted.ok': 'Готово.',
  'room.speaking': 'говорит',
  'confirm.cancel': 'Отмена',
  'shortcuts.button': 'Быстрые клавиши',
  'shortcuts.title': 'Быстрые клавиши',
  'shortcuts.mic': 'Включить или выключить микрофон',
  'shortcuts.camera': 'Включить или выключить камеру',
  'shortcuts.chat': 'Показать или скрыть чат',
  'shortcuts.hand': 'Поднять или опустить руку',
  'shortcuts.help': 'Показать этот список',
  'shortcuts.note': 'Клавиши работают, когда вы не печатаете в текстовом поле, в любой раскладке.',
  'shortcuts.close': 'Закрыть',
  'confirm.stay': 'Остаться',
  'confirm.leave.title': 'Выйти из встречи?',
  'confirm.leave.text': 'Пока встреча идёт, в неё можно вернуться по той же ссылке.',
  'confirm.end.title': 'Завершить встречу для всех?',
  'confirm.end.text': 'Все участники будут отключены, снова открыть встречу будет нельзя.',
  'confirm.kick.title': 'Удалить участника {name}?',
  'confirm.kick.text': '{name} покинет встречу и не сможет снова войти в неё по этой ссылке.',

  'chat.placeholder': 'Сообщение для всех',
  'chat.log': 'Сообщения чата',
  'chat.close': 'Скрыть чат',
  'chat.unread': {
    one: '{count} непрочитанное сообщение',
    few: '{count} непрочитанных сообщения',
    many: '{count} непрочитанных сообщений',
    other: '{count} непрочитанного сообщения',
  },
  'chat.send': 'Отправить',
  'chat.edit': 'Изменить',
  'chat.delete': 'Удалить',
  'chat.deleted': 'Сообщение удалено.',
  'chat.undo': 'Отменить',
  'chat.save': 'Сохранить',
  'chat.cancel': 'Отмена',
  'chat.edited': 'изменено',
  'system.joined': '{name} присоединился(-лась)',
  'system.left': '{name} вышел(-ла)',
  'system.removed': '{name} удалён(-а) организатором',
  'system.timedOut': '{name} вышел(-ла): связь потеряна',
  'system.hostChanged': '{name} теперь организатор',
  'system.roomEnded': 'Встреча завершена',
  'chat.empty': 'Сообщений пока нет. Поздоровайтесь!',
  'chat.older': 'Показать более ранние',
  'chat.connecting': 'Подключение…',
  'chat.offline': 'Чат переподключается — сообщения могут приходить с задержкой',
  'chat.notSent': 'Сообщение не отправлено: {reason}',
  'chat.noAck': 'Сервер не подтвердил отправку. Возможно, сообщение не дошло.',
  'chat.slowDown': 'слишком много сообщений, чуть медленнее',

  'screen.home': 'На главную',
  'screen.retry': 'Повторить',
  'screen.notFound.title': 'Встреча не найдена',
  'screen.notFound.text': 'Проверьте ссылку. Возможно, срок встречи истёк.',
  'screen.full.title': 'Во встрече нет мест',
  'screen.full.text': {
    one: 'Все {max} место занято. Попробуйте, когда кто-нибудь выйдет.',
    few: 'Все {max} места заняты. Попробуйте, когда кто-нибудь выйдет.',
    many: 'Все {max} мест заняты. Попробуйте, когда кто-нибудь выйдет.',
    other: 'Все {max} места заняты. Попробуйте, когда кто-нибудь выйдет.',
  },
  'screen.full.textNoMax': 'Все места заняты. Попробуйте, когда кто-нибудь выйдет.',
  'screen.ended.title': 'Встреча завершена',
  'screen.ended.text': 'Спасибо за участие.',
  'screen.endedBeforeJoin.title': 'Встреча закончилась до того, как вы вошли',
  'screen.endedBeforeJoin.text': 'Организатор завершил её, или все уже вышли. Попросите новую ссылку, чтобы встретиться.',
  'screen.kicked.title': 'Вас удалили с этой встречи',
  'screen.kicked.text': 'Организатор удалил вас. Снова войти в эту встречу нельзя.',
  'screen.rateLimited.title': 'Слишком много запросов',
  'screen.rateLimited.text': 'Слишком много запросов, повторите через {seconds} с.',
  'screen.rateLimited.ready': 'Можно попробовать снова.',
  'screen.error.title': 'Что-то пошло не так',
  'screen.error.text': 'Сервис не ответил. Проверьте подключение и попробуйте снова.',

  'error.network': 'нет связи с сервером',
  'error.generic': 'сервер ответил ошибкой ({status})',
  'error.unavailable': 'сервис временно недоступен',
  'error.rate_limited': 'слишком много запросов, повторите через {seconds} с',
  'error.not_host': 'это может только организатор',
  'error.not_author': 'изменять можно только свои сообщения',
  'error.participant_not_found': 'этого участника уже нет',
  'error.message_not_found': 'этого сообщения уже нет',
  'error.validation_error': 'проверьте поля формы',
  'error.not_a_participant': 'вы больше не участник этой встречи',

  'home.create.e2ee': 'Сквозное шифрование',
  'home.create.e2ee.hint':
    'Видео, звук и чат шифруются в браузерах ключом, который есть только в ссылке на встречу. '
    + 'Название встречи и имена участников не шифруются.',
  'home.create.e2ee.unavailable': 'Для шифрования страницу нужно открыть по HTTPS.',

  'lobby.waiting.title': 'Ждём, пока организатор впустит вас',
  'lobby.waiting.text': 'Организатор знает, что вы здесь. Вы войдёте, как только он вас впустит.',
  'lobby.cancel': 'Отмена',
  'lobby.heading': 'Ждут входа',
  'lobby.request': '{name} просит войти',
  'lobby.admit': 'Впустить',
  'lobby.deny': 'Отклонить',
  'lobby.admit.label': 'Впустить: {name}',
  'lobby.deny.label': 'Отклонить: {name}',
  'lobby.badge': {
    one: 'Входа ждёт {count} человек',
    few: 'Входа ждут {count} человека',
    many: 'Входа ждут {count} человек',
    other: 'Входа ждут {count} человека',
  },
  'lobby.notice': '{name} ждёт входа',

  'settings.button': 'Настройки встречи',
  'settings.heading': 'Настройки встречи',
  'settings.locked': 'Закрыть вход',
  'settings.locked.hint': 'Новые участники не смогут войти. Те, кто уже здесь, останутся.',
  'settings.lobby': 'Зал ожидания',
  'settings.lobby.hint': 'Новые участники ждут, пока организатор их впустит.',
  'settings.sound': 'Звук, когда кто-то просит войти',
  'settings.close': 'Закрыть настройки встречи',
  'room.status.locked': 'Вход закрыт',
  'room.status.lobby': 'Зал ожидания',
  'room.status.e2ee': 'Сквозное шифрование',

  'room.promote.title': 'Сделать организатором: {name}',
  'room.promote.label': 'Сделать организатором: {name}',
  'room.demote.title': 'Снять права организатора: {name}',
  'room.demote.label': 'Снять права организатора: {name}',
  'room.stepDown.title': 'Перестать быть организатором',
  'room.stepDown.label': 'Перестать быть организатором',
  'room.promoted.ok': '{name} теперь организатор.',
  'room.demoted.ok': '{name} больше не организатор.',
  'room.youPromoted': 'Теперь вы организатор.',
  'room.youDemoted': 'Вы больше не организатор.',
  'room.lastHost': 'Вы единственный организатор. Сначала сделайте организатором кого-то ещё.',
  'room.hand': 'Поднята рука',
  'room.handOf': '{name} поднимает руку',

  'media.hand': 'Рука',
  'media.hand.name': 'Поднять руку',
  'media.hand.on': 'Опустить руку',
  'media.hand.off': 'Поднять руку',
  'media.e2ee.noKey': 'Видео этой встречи зашифровано сквозным шифрованием, а в вашей ссылке нет ключа.',
  'media.e2ee.unsupported': 'Этот браузер не поддерживает видео со сквозным шифрованием.',
  'media.e2ee.cannotDecrypt': 'Это видео не расшифровать',

  'e2ee.noKey': 'Эта встреча защищена сквозным шифрованием. Попросите полную ссылку, вместе с частью после #.',
  'e2ee.wrongKey':
    'Ключ в вашей ссылке не подходит к этой встрече. '
    + 'Эта встреча защищена сквозным шифрованием. Попросите полную ссылку, вместе с частью после #.',
  'chat.undecryptable': 'Зашифрованное сообщение (с вашей ссылкой его не прочитать)',
  'chat.noKey': 'Чат зашифрован сквозным шифрованием: чтобы читать и писать, нужна полная ссылка.',
  'chat.tooLong': 'сообщение слишком длинное',

  'screen.denied.title': 'Организатор не впустил вас',
  'screen.denied.text': 'Ваш запрос на вход в эту встречу отклонён.',
  'prejoin.locked': 'Вход во встречу закрыт: организатор сейчас никого не впускает.',
  'error.room_locked': 'вход во встречу закрыт',
  'error.lobby_denied': 'организатор не впустил вас',
  'error.last_host': 'вы единственный организатор',
  'error.already_resolved': 'другой организатор уже ответил',
  'error.request_not_found': 'этот запрос больше не ждёт ответа',
  'error.room_full': 'во встрече нет мест',
};

const catalogs = { en, ru };

/** The languages of the page, each named in itself (for the switch in the top bar). */
export const languages = [['en', 'English'], ['ru', 'Русский']];
const LANG_KEY = 'veche.lang';

/** The language chosen with the switch, if any (kept in localStorage). */
function chosenLanguage() {
  try {
    const stored = window.localStorage.getItem(LANG_KEY);
    return stored && stored in catalogs ? stored : null;
  } catch {
    return null;
  }
}

function browserLanguage() {
  const wanted = [navigator.language, ...(navigator.languages || [])].filter(Boolean);
  return String(wanted[0] || 'en').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

/** The page language: the one chosen with the switch, else the browser's (ru* → Russian). */
export let lang = chosenLanguage() ?? browserLanguage();
let strings = catalogs[lang];
let plurals = new Intl.PluralRules(lang);

/** Switches the page language and remembers the choice; the caller draws the page again. */
export function setLanguage(code) {
  if (!(code in catalogs)) return;
  lang = code;
  strings = catalogs[code];
  plurals = new Intl.PluralRules(code);
  try {
    window.localStorage.setItem(LANG_KEY, code);
  } catch {
    // Not kept: the choice lasts as long as the page.
  }
}

/**
 * The string for `key` in the page language, with `{name}` placeholders filled from `vars`.
 * A string with plural forms picks the form for `vars.count` (or `vars.max`).
 */
export function t(key, vars = {}) {
  let template = strings[key] ?? en[key] ?? key;
  if (typeof template === 'object') {
    const category = plurals.select(Number(vars.count ?? vars.max ?? 0));
    template = template[category] ?? template.other;
  }
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Local wall-clock time of an RFC 3339 timestamp, e.g. 18:05. */
export function formatTime(timestamp) {
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
}

export { catalogs };
