"""The web app's message catalogue (English and German) and the choice of language.

A message is looked up by its English text; German falls back to English for a text not in the
catalogue, so a missing translation shows English rather than a key.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "lf_lang"

Translate = Callable[..., str]

_DE: dict[str, str] = {
    # shell
    "Dashboard": "Übersicht",
    "Leads": "Leads",
    "Pipeline": "Pipeline",
    "Notifications": "Benachrichtigungen",
    "Sign in": "Anmelden",
    "Sign out": "Abmelden",
    "Language": "Sprache",
    "Main navigation": "Hauptnavigation",
    "Skip to content": "Zum Inhalt springen",
    "You have {n} unread notifications": "Sie haben {n} ungelesene Benachrichtigungen",
    "Mark all read": "Alle als gelesen markieren",
    "No notifications": "Keine Benachrichtigungen",
    "Signed in as {email}": "Angemeldet als {email}",
    # sign-in and invitations
    "Email": "E-Mail",
    "Password": "Passwort",
    "Sign in to Leadflow": "Bei Leadflow anmelden",
    "Invalid email or password": "E-Mail oder Passwort ist falsch",
    "Too many failed logins; try again later": (
        "Zu viele fehlgeschlagene Anmeldungen; versuchen Sie es später erneut"
    ),
    "Accept the invitation": "Einladung annehmen",
    "Choose a password (at least {n} characters) to join your team.": (
        "Wählen Sie ein Passwort (mindestens {n} Zeichen), um Ihrem Team beizutreten."
    ),
    "Set password and sign in": "Passwort setzen und anmelden",
    "Password must be at least {n} characters": "Das Passwort muss mindestens {n} Zeichen haben",
    "Repeat password": "Passwort wiederholen",
    "The passwords differ": "Die Passwörter stimmen nicht überein",
    # errors
    "Page not found": "Seite nicht gefunden",
    "Permission denied": "Keine Berechtigung",
    "Something went wrong": "Etwas ist schiefgelaufen",
    "Back to the dashboard": "Zurück zur Übersicht",
    "The page or record does not exist, or it is not yours to see.": (
        "Die Seite oder der Datensatz existiert nicht oder ist für Sie nicht sichtbar."
    ),
    "Your role does not allow this.": "Ihre Rolle erlaubt das nicht.",
    "An unexpected error occurred; quote the request id when reporting it.": (
        "Ein unerwarteter Fehler ist aufgetreten; nennen Sie die Request-ID, wenn Sie ihn melden."
    ),
    "The form has expired; reload the page and try again.": (
        "Das Formular ist abgelaufen; laden Sie die Seite neu und versuchen Sie es erneut."
    ),
    "Request id": "Request-ID",
    # leads list
    "Search": "Suche",
    "Search name, email, phone, company": "Name, E-Mail, Telefon, Firma suchen",
    "Status": "Status",
    "Source": "Quelle",
    "Assignee": "Zuständig",
    "Anyone": "Alle",
    "Me": "Ich",
    "Unassigned": "Nicht zugewiesen",
    "Any": "Alle",
    "Needs action": "Handlungsbedarf",
    "Sort": "Sortierung",
    "Newest first": "Neueste zuerst",
    "Oldest first": "Älteste zuerst",
    "Name A–Z": "Name A–Z",
    "Highest score": "Höchster Score",
    "Recently updated": "Zuletzt geändert",
    "Next action due": "Nächste Aktion fällig",
    "Name": "Name",
    "Company": "Firma",
    "Score": "Score",
    "Created": "Erstellt",
    "Select": "Auswählen",
    "Select all on this page": "Alle auf dieser Seite auswählen",
    "{n} leads": "{n} Leads",
    "more than {n} leads": "mehr als {n} Leads",
    "No leads match.": "Keine Leads gefunden.",
    "Next page": "Nächste Seite",
    "First page": "Erste Seite",
    "Export CSV": "CSV exportieren",
    "Export XLSX": "XLSX exportieren",
    "Bulk action": "Sammelaktion",
    "Assign to": "Zuweisen an",
    "Move to stage": "In Phase verschieben",
    "Delete": "Löschen",
    "Apply to selected": "Auf Auswahl anwenden",
    "Apply this action to the selected leads?": "Diese Aktion auf die ausgewählten Leads anwenden?",
    "{n} of {m} leads updated": "{n} von {m} Leads geändert",
    "Select at least one lead": "Wählen Sie mindestens einen Lead aus",
    "Next action": "Nächste Aktion",
    "Nothing needs action.": "Nichts zu tun.",
    "Filters": "Filter",
    "Apply filters": "Filter anwenden",
    "More filters": "Weitere Filter",
    "Show only": "Nur anzeigen",
    "Saved views": "Gespeicherte Ansichten",
    "No saved views yet.": "Noch keine gespeicherten Ansichten.",
    "Save this view": "Diese Ansicht speichern",
    "Name of the view": "Name der Ansicht",
    "Delete this view?": "Diese Ansicht löschen?",
    "You already have a view of that name": "Sie haben bereits eine Ansicht mit diesem Namen",
    "At most 50 saved views": "Höchstens 50 gespeicherte Ansichten",
    "A name of 1 to 100 characters": "Ein Name mit 1 bis 100 Zeichen",
    "Tag": "Tag",
    "Reset": "Zurücksetzen",
    "Due {when}": "Fällig {when}",
    # lead page
    "Lead": "Lead",
    "First name": "Vorname",
    "Last name": "Nachname",
    "Phone": "Telefon",
    "Channel": "Kanal",
    "Tags": "Tags",
    "Comma-separated": "Durch Kommas getrennt",
    "Notes": "Notizen",
    "Save": "Speichern",
    "Saved": "Gespeichert",
    "Stage": "Phase",
    "Reason (optional)": "Grund (optional)",
    "Move": "Verschieben",
    "Assign": "Zuweisen",
    "Timeline": "Verlauf",
    "Nothing happened yet.": "Noch nichts passiert.",
    "Consents": "Einwilligungen",
    "granted": "erteilt",
    "revoked": "widerrufen",
    "none": "keine",
    "SLA": "SLA",
    "Details": "Details",
    "Another lead was saved meanwhile; reload to see its changes.": (
        "Der Lead wurde inzwischen geändert; laden Sie neu, um die Änderungen zu sehen."
    ),
    "Fix the marked fields.": "Korrigieren Sie die markierten Felder.",
    "Back to the list": "Zurück zur Liste",
    "Delete this lead?": "Diesen Lead löschen?",
    "Delete lead": "Lead löschen",
    # pipeline
    "Load more": "Mehr laden",
    "Move {name} to": "{name} verschieben nach",
    "Drag a card to another column, or use its stage menu.": (
        "Ziehen Sie eine Karte in eine andere Spalte oder nutzen Sie ihr Phasenmenü."
    ),
    # dashboard
    "Total leads": "Leads gesamt",
    "New today": "Neu heute",
    "New this week": "Neu diese Woche",
    "SLA at risk": "SLA gefährdet",
    "SLA breached": "SLA verletzt",
    "Conversion (30 days)": "Konversion (30 Tage)",
    "Funnel (30 days)": "Trichter (30 Tage)",
    "Lead volume (30 days)": "Lead-Volumen (30 Tage)",
    "Leads per assignee": "Leads pro Zuständigem",
    "Alerts": "Hinweise",
    "No alerts.": "Keine Hinweise.",
    "Open": "Offen",
    "Won": "Gewonnen",
    "Breached": "Verletzt",
    "Load": "Auslastung",
    "Count": "Anzahl",
    "Share": "Anteil",
    "Day": "Tag",
    "New leads": "Neue Leads",
    "Your role has no analytics.": "Ihre Rolle hat keinen Zugriff auf Auswertungen.",
    # import wizard
    "Import": "Import",
    "Import leads": "Leads importieren",
    "Choose a CSV or XLSX file, check where its columns go, try a dry run, then import.": (
        "Wählen Sie eine CSV- oder XLSX-Datei: Leadflow schlägt vor, wohin jede Spalte gehört; "
        "prüfen Sie den Vorschlag, machen Sie einen Probelauf und importieren Sie dann."
    ),
    "File": "Datei",
    "CSV or XLSX file": "CSV- oder XLSX-Datei",
    "When a lead exists already": "Wenn der Lead schon existiert",
    "Skip the row": "Zeile überspringen",
    "Update the lead": "Lead aktualisieren",
    "Create another lead": "Weiteren Lead anlegen",
    "Preview": "Vorschau",
    "Recent imports": "Letzte Importe",
    "Imported": "Importiert",
    "Errors": "Fehler",
    "Proposed mapping": "Vorgeschlagene Zuordnung",
    "{n} rows": "{n} Zeilen",
    "delimiter": "Trennzeichen",
    "Detected source": "Erkannte Quelle",
    "none recognised": "keine erkannt",
    "Columns": "Spalten",
    "Column": "Spalte",
    "Goes to": "Ziel",
    "Why": "Grund",
    "Examples": "Beispiele",
    "Target of column {name}": "Ziel der Spalte {name}",
    "Date format of column {name}": "Datumsformat der Spalte {name}",
    "(ignore)": "(ignorieren)",
    "(default)": "(Standard)",
    "Stages": "Phasen",
    "Status in the file": "Status in der Datei",
    "Rows": "Zeilen",
    "Stage for {value}": "Phase für {value}",
    "Owners": "Zuständige",
    "not assigned": "nicht zugewiesen",
    "no such user": "kein solcher Benutzer",
    "New custom fields": "Neue Zusatzfelder",
    "Refresh preview": "Vorschau aktualisieren",
    "Dry run": "Probelauf",
    "Would create": "Würde anlegen",
    "Would update": "Würde aktualisieren",
    "Would skip": "Würde überspringen",
    "Warnings": "Warnungen",
    "Row": "Zeile",
    "Value": "Wert",
    "Message": "Meldung",
    "First errors": "Erste Fehler",
    "Import {n} rows": "{n} Zeilen importieren",
    "The file cannot be imported": "Die Datei kann nicht importiert werden",
    "Choose a CSV or XLSX file": "Wählen Sie eine CSV- oder XLSX-Datei",
    "Progress": "Fortschritt",
    "{done} of {total} rows": "{done} von {total} Zeilen",
    "Updated": "Aktualisiert",
    "Skipped": "Übersprungen",
    "Download errors.csv": "errors.csv herunterladen",
    "the failed rows, to fix and import again": (
        "die fehlerhaften Zeilen, zum Korrigieren und erneuten Importieren"
    ),
    "Undo import": "Import rückgängig machen",
    "Undo this import? Its new leads are removed and updated fields restored.": (
        "Diesen Import rückgängig machen? Neue Leads werden entfernt, geänderte Felder "
        "wiederhergestellt."
    ),
    "Undone": "Rückgängig gemacht",
    "pending": "wartet",
    "running": "läuft",
    "completed": "abgeschlossen",
    "failed": "fehlgeschlagen",
    "undone": "rückgängig gemacht",
    # admin pages
    "API keys": "API-Schlüssel",
    "Action": "Aktion",
    "Actions": "Aktionen",
    "Admin": "Verwaltung",
    "Administration": "Verwaltung",
    "After": "Nachher",
    "Attempts": "Versuche",
    "Audit log": "Prüfprotokoll",
    "Before": "Vorher",
    "Connect and test": "Verbinden und testen",
    "Connected: {name}": "Verbunden: {name}",
    "Copy": "Kopieren",
    "Copy the key now: it is shown this once.": (
        "Kopieren Sie den Schlüssel jetzt: Er wird nur dieses eine Mal angezeigt."
    ),
    "Copy the signing secret now: it is shown this once.": (
        "Kopieren Sie das Signatur-Geheimnis jetzt: Es wird nur dieses eine Mal angezeigt."
    ),
    "Create a key": "Schlüssel anlegen",
    "Create endpoint": "Endpunkt anlegen",
    "Create key": "Schlüssel anlegen",
    "Database": "Datenbank",
    "Deactivate": "Deaktivieren",
    "Deactivate {name}": "{name} deaktivieren",
    "Deliveries": "Zustellungen",
    "Description": "Beschreibung",
    "Disconnect": "Trennen",
    "Disconnect this integration?": "Diese Integration trennen?",
    "Email backlog": "E-Mail-Rückstau",
    "Emails": "E-Mails",
    "Endpoint created": "Endpunkt angelegt",
    "Event": "Ereignis",
    "Events": "Ereignisse",
    "Failed jobs": "Fehlgeschlagene Jobs",
    "From": "Von",
    "Integrations": "Integrationen",
    "Invite a member": "Mitglied einladen",
    "Invite again": "Erneut einladen",
    "Jobs": "Jobs",
    "Jobs and emails": "Jobs und E-Mails",
    "Jobs waiting": "Wartende Jobs",
    "Kind": "Art",
    "Last answer": "Letzte Antwort",
    "Last error": "Letzter Fehler",
    "Last sign-in": "Letzte Anmeldung",
    "Last success": "Letzter Erfolg",
    "Last used": "Zuletzt benutzt",
    "New endpoint": "Neuer Endpunkt",
    "New key {name}": "Neuer Schlüssel {name}",
    "No deliveries yet.": "Noch keine Zustellungen.",
    "No emails.": "Keine E-Mails.",
    "No endpoints yet.": "Noch keine Endpunkte.",
    "No entries match.": "Keine Einträge gefunden.",
    "No jobs.": "Keine Jobs.",
    "No keys yet.": "Noch keine Schlüssel.",
    "No worker seen.": "Kein Worker gesehen.",
    "Outbox pending": "Ausstehende Zustellungen",
    "Permissions": "Berechtigungen",
    "Prefix": "Präfix",
    "Replay": "Erneut senden",
    "Requests": "Anfragen",
    "Requests (last {n} minutes)": "Anfragen (letzte {n} Minuten)",
    "Resource": "Ressource",
    "Retry": "Wiederholen",
    "Revoke": "Widerrufen",
    "Revoke this key? Clients using it stop working at once.": (
        "Diesen Schlüssel widerrufen? Clients, die ihn nutzen, funktionieren sofort nicht mehr."
    ),
    "Role": "Rolle",
    "Roles": "Rollen",
    "Route group": "Routengruppe",
    "Row scope": "Sichtbereich",
    "Scopes": "Berechtigungen",
    "Send a signed webhook.test event now and see what the endpoint answers.": (
        "Jetzt ein signiertes webhook.test-Ereignis senden und die Antwort des Endpunkts sehen."
    ),
    "Send invitation": "Einladung senden",
    "Send test event": "Testereignis senden",
    "Settings": "Einstellungen",
    "Subject": "Betreff",
    "System health": "Systemzustand",
    "System roles are fixed; create a custom role to change permissions.": (
        "Systemrollen sind fest; legen Sie eine eigene Rolle an, um Berechtigungen zu ändern."
    ),
    "Test": "Test",
    "Test and connect": "Testen und verbinden",
    "Test delivered": "Test zugestellt",
    "Test failed": "Test fehlgeschlagen",
    "Their open leads go to": "Offene Leads gehen an",
    "To": "An",
    "URL": "URL",
    "Users": "Benutzer",
    "Version": "Version",
    "Webhook": "Webhook",
    "Webhook backlog": "Webhook-Rückstau",
    "Webhooks": "Webhooks",
    "Workers": "Worker",
    "Workers alive": "Aktive Worker",
    "active": "aktiv",
    "alive": "aktiv",
    "custom": "eigene",
    "in use": "in Verwendung",
    "invited": "eingeladen",
    "last sync": "letzte Synchronisierung",
    "server setting": "Servereinstellung",
    "silent": "stumm",
    "system": "System",
    "the assignment rules": "die Zuweisungsregeln",
    "this organisation": "diese Organisation",
    "{n} failures": "{n} Fehlschläge",
    "{n} members": "{n} Mitglieder",
    "Invitation sent": "Einladung gesendet",
    "Member deactivated": "Mitglied deaktiviert",
    "Key revoked": "Schlüssel widerrufen",
    "Delivery queued again": "Zustellung erneut eingereiht",
    "Job queued again": "Job erneut eingereiht",
    "Integration disconnected": "Integration getrennt",
    "inactive": "inaktiv",
    "disabled": "deaktiviert",
    "delivered": "zugestellt",
    "retry": "Wiederholung",
    "sent": "gesendet",
    "logged": "protokolliert",
    "all": "alle",
    "ok": "ok",
    "degraded": "beeinträchtigt",
    "connected": "verbunden",
    "not_connected": "nicht verbunden",
    "error": "Fehler",
    # lead page panels
    "AI assistant": "KI-Assistent",
    "Add task": "Aufgabe hinzufügen",
    "Analyse the lead": "Lead analysieren",
    "Applied to the lead.": "Auf den Lead übernommen.",
    "Apply to the lead": "Auf den Lead übernehmen",
    "Calls": "Anrufe",
    "Cancel": "Abbrechen",
    "Complete {title}": "{title} erledigen",
    "Draft": "Entwurf",
    "Draft a follow-up": "Nachfass-Nachricht entwerfen",
    "Due (UTC)": "Fällig (UTC)",
    "Duplicates": "Dubletten",
    "Merged leads fill the empty fields, add tags and notes, then are removed.": (
        "Zusammengeführte Leads füllen leere Felder, ergänzen Tags und Notizen "
        "und werden dann entfernt."
    ),
    "Loading…": "Lädt…",
    "Merge": "Zusammenführen",
    "Merge duplicates into this lead": "Dubletten in diesen Lead zusammenführen",
    "Merge…": "Zusammenführen…",
    "New task": "Neue Aufgabe",
    "No calls yet.": "Noch keine Anrufe.",
    "No likely duplicates.": "Keine wahrscheinlichen Dubletten.",
    "No tasks.": "Keine Aufgaben.",
    "Number to call": "Anzurufende Nummer",
    "Priority": "Priorität",
    "Reload": "Neu laden",
    "Request a call": "Anruf anfordern",
    "Tasks": "Aufgaben",
    "What should the message say? (optional)": "Was soll die Nachricht sagen? (optional)",
    "local fallback": "lokaler Ersatz",
    "no": "nein",
    "overdue": "überfällig",
    "yes": "ja",
    "Choose at least one lead to merge": "Wählen Sie mindestens einen Lead zum Zusammenführen",
    "low": "niedrig",
    "normal": "normal",
    "high": "hoch",
    "urgent": "dringend",
    "open": "offen",
    "done": "erledigt",
    "queued": "in der Warteschlange",
    "outside_business_hours": "außerhalb der Geschäftszeiten",
    "calling": "ruft an",
    "in_progress": "läuft",
    "waiting_for_callback": "wartet auf Rückruf",
    "booked": "gebucht",
    "canceled": "abgebrochen",
    # reports and my day
    "Aggregation {n}: field": "Aggregation {n}: Feld",
    "Aggregation {n}: function": "Aggregation {n}: Funktion",
    "Aggregations": "Aggregationen",
    "Build a report": "Bericht erstellen",
    "Day of month (monthly)": "Tag im Monat (monatlich)",
    "Day of week (weekly, 1 = Monday)": "Wochentag (wöchentlich, 1 = Montag)",
    "Delete report": "Bericht löschen",
    "Delete this report with its schedules and files?": (
        "Diesen Bericht mit seinen Zeitplänen und Dateien löschen?"
    ),
    "Direction": "Richtung",
    "Download": "Herunterladen",
    "Export": "Export",
    "Filter {n}: field": "Filter {n}: Feld",
    "Filter {n}: operator": "Filter {n}: Operator",
    "Filter {n}: value": "Filter {n}: Wert",
    "Format": "Format",
    "Frequency": "Häufigkeit",
    "Group by": "Gruppieren nach",
    "History": "Verlauf",
    "My SLA clocks": "Meine SLA-Fristen",
    "My day": "Mein Tag",
    "My leads needing action": "Meine Leads mit Handlungsbedarf",
    "My tasks due": "Meine fälligen Aufgaben",
    "No open SLA clocks.": "Keine offenen SLA-Fristen.",
    "No reports yet.": "Noch keine Berichte.",
    "No rows.": "Keine Zeilen.",
    "No runs yet.": "Noch keine Läufe.",
    "Nothing due.": "Nichts fällig.",
    "Pause": "Pausieren",
    "Recipients (members' emails, comma-separated)": (
        "Empfänger (E-Mails von Mitgliedern, durch Kommas getrennt)"
    ),
    "Reports": "Berichte",
    "Resume": "Fortsetzen",
    "Save and preview": "Speichern und Vorschau",
    "Saved reports": "Gespeicherte Berichte",
    "Schedule": "Zeitplan",
    "Sort by": "Sortieren nach",
    "Templates": "Vorlagen",
    "Time": "Uhrzeit",
    "Trigger": "Auslöser",
    "ascending": "aufsteigend",
    "descending": "absteigend",
    "next": "nächster",
    "value (lists: a, b)": "Wert (Listen: a, b)",
    "daily": "täglich",
    "weekly": "wöchentlich",
    "monthly": "monatlich",
    "paused": "pausiert",
}

_CATALOGUES: dict[str, dict[str, str]] = {"en": {}, "de": _DE}


def language_of(request: Request) -> str:
    """The cookie's language, else the best of Accept-Language, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def translator(language: str) -> Translate:
    """`_(text, **values)`: the text in `language`, with `{name}` placeholders filled."""
    catalogue = _CATALOGUES.get(language, {})

    def _(text: str, **values: object) -> str:
        out = catalogue.get(text, text)
        return out.format(**values) if values else out

    return _
