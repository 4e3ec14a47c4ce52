# Messages sent outside Stillpoint (e-mail and SMS) and their in-app notices.
# They must never name a diagnosis, score, answer or free text: only what the person needs to
# act, such as a session time.

message-when-today = today at { $time }
message-when-tomorrow = tomorrow at { $time }
message-when-date = on { $date } at { $time }

message-session-reminder-subject = Reminder: your group session { $when }
message-session-reminder = Your group session starts { $when }. You can join it from your program page.
message-session-rescheduled-subject = Your group session has moved
message-session-rescheduled = Your group session { $previous } has moved. It now starts { $when }.
message-session-cancelled-subject = A group session is cancelled
message-session-cancelled = The group session { $when } will not take place. Your program page shows the next one.
message-practice-reminder-subject = Time for today's practice
message-practice-reminder = This is your daily practice reminder. Even a few minutes count.
message-measure-due-subject = A short check-in is ready
message-measure-due = A short check-in is ready for you. It takes a few minutes.
message-measure-overdue-subject = Your check-in is still open
message-measure-overdue = Your check-in is still open. Answer it whenever you are ready.
message-re-engagement-subject = You are welcome back at any time
message-re-engagement = We have missed you at the group. You are welcome back at any time; your program page shows the next session.
message-alert-escalated-subject = A safety alert needs your attention
message-alert-escalated = A safety alert at your site was not acknowledged in time and now comes to you. Open the alert inbox to review it.

message-open = Open Stillpoint: { $link }
message-open-button = Open Stillpoint
message-unsubscribe = You get these messages because you chose them in Stillpoint. To stop them by e-mail and text message: { $link }
message-unsubscribe-link = Stop these messages
message-sent-by = Sent by { $clinic }.

notification-session-reminder = Your group session starts soon. Your program page has the time.
notification-session-rescheduled = A group session has moved to another time. Your program page has the new time.
notification-session-cancelled = A group session is cancelled. Your program page shows the next one.
notification-practice-reminder = Time for today's practice. Even a few minutes count.
notification-measure-due = A short check-in is ready for you.
notification-measure-overdue = Your check-in is still open. Answer it whenever you are ready.
notification-re-engagement = We have missed you at the group. You are welcome back at any time.
