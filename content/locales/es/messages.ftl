# Mensajes enviados fuera de Stillpoint (correo electrónico y SMS) y sus avisos en la aplicación.

message-when-today = hoy a las { $time }
message-when-tomorrow = mañana a las { $time }
message-when-date = el { $date } a las { $time }

message-session-reminder-subject = Recordatorio: su sesión de grupo { $when }
message-session-reminder = Su sesión de grupo empieza { $when }. Puede unirse desde la página de su programa.
message-session-rescheduled-subject = Su sesión de grupo ha cambiado de hora
message-session-rescheduled = Su sesión de grupo { $previous } ha cambiado. Ahora empieza { $when }.
message-session-cancelled-subject = Se ha cancelado una sesión de grupo
message-session-cancelled = La sesión de grupo { $when } no se realizará. La página de su programa muestra la siguiente.
message-practice-reminder-subject = Es hora de la práctica de hoy
message-practice-reminder = Este es su recordatorio diario de práctica. Incluso unos minutos cuentan.
message-measure-due-subject = Un breve cuestionario le espera
message-measure-due = Tiene un breve cuestionario listo. Le llevará unos minutos.
message-measure-overdue-subject = Su cuestionario sigue abierto
message-measure-overdue = Su cuestionario sigue abierto. Respóndalo cuando esté listo.
message-re-engagement-subject = Puede volver cuando quiera
message-re-engagement = Le hemos echado de menos en el grupo. Puede volver cuando quiera; la página de su programa muestra la próxima sesión.
message-alert-escalated-subject = Una alerta de seguridad necesita su atención
message-alert-escalated = Una alerta de seguridad de su centro no se confirmó a tiempo y ahora le corresponde a usted. Abra la bandeja de alertas para revisarla.

message-open = Abrir Stillpoint: { $link }
message-open-button = Abrir Stillpoint
message-unsubscribe = Recibe estos mensajes porque los eligió en Stillpoint. Para dejar de recibirlos por correo y SMS: { $link }
message-unsubscribe-link = Dejar de recibir estos mensajes
message-sent-by = Enviado por { $clinic }.

notification-session-reminder = Su sesión de grupo empieza pronto. La página de su programa tiene la hora.
notification-session-rescheduled = Una sesión de grupo ha cambiado de hora. La página de su programa tiene la nueva hora.
notification-session-cancelled = Se ha cancelado una sesión de grupo. La página de su programa muestra la siguiente.
notification-practice-reminder = Es hora de la práctica de hoy. Incluso unos minutos cuentan.
notification-measure-due = Tiene un breve cuestionario listo.
notification-measure-overdue = Su cuestionario sigue abierto. Respóndalo cuando esté listo.
notification-re-engagement = Le hemos echado de menos en el grupo. Puede volver cuando quiera.
