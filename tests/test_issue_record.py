"""The issue record (seed 003) read from customer mail: when, phone, where, what, errors, first time."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.parse.html import html_to_text
from maildesk.parse.issue_record import FIELDS, IssueRecord, extract


@dataclass(frozen=True)
class Case:
    subject: str
    body: str
    occurred: str = ""
    phone: str = ""
    location: str = ""
    resource: str = ""
    errors: tuple[str, ...] = ()
    first_time: bool | None = None
    # fields where any value will do: the mail names two things and another one is taken
    loose: frozenset[str] = field(default_factory=frozenset)
    # known misses: what a person would record where `extract` (erring on the side of asking) finds nothing
    misses: dict[str, object] = field(default_factory=dict)


H5_HTML = html_to_text(
    "<p>Dear IT,</p><p>The password reset portal (<a href='https://reset.example.com'>reset.example.com</a>)"
    ' returns <b>"Invalid token"</b> when I click the link from the e-mail. I tried three times this'
    " morning.</p><p>Kind regards,<br>Ahmed Khan<br>Mob: +971 50 123 4567</p>"
)

G14_HTML = html_to_text(
    "<p>Hello,</p><p>Since the weekend our team site on SharePoint shows &quot;Sorry, something went"
    " wrong&quot;.</p><p>Best regards</p><table><tr><td>Fax</td><td>+49 40 555 0100</td></tr><tr><td>Phone"
    "</td><td>+49 40 555 0123</td></tr><tr><td>Office</td><td>Hamburg HQ, Room 4.12</td></tr></table>"
)

CASES: dict[str, Case] = {
    "english, signature phone, building and room": Case(
        "Billing module broken",
        "Hi,\n\n"
        'since this morning around 9 I can\'t log in to the billing module. It says "Session expired (E-42)"'
        " every time I try.\nThis never happened before.\n\n"
        "I'm in Building B, room 2.14.\n\n"
        "Best regards\nAnna Meier\nFinance\nPhone +41 44 123 45 67\n",
        occurred="since this morning around 9",
        phone="+41 44 123 45 67",
        location="Building B, room 2.14",
        resource="Billing module",
        errors=("Session expired (E-42)",),
        first_time=True,
    ),
    "typos and sent from my iphone": Case(
        "vpn not workin",
        "hi, vpn keeps disconnecting since yesterday evening, cant work from home. pls call me 079 555 12 34"
        "\n\nSent from my iPhone\n",
        occurred="since yesterday evening",
        phone="079 555 12 34",
        resource="vpn",
        first_time=False,
    ),
    "printer model and floor, extension in the signature": Case(
        "Printer jammed again",
        "Hello IT,\n\n"
        'The printer HP-4200 on floor 2 is showing "Paper jam in tray 2" again, even though there is no'
        " paper stuck. It happened again today at 10:15.\n\n"
        "Thanks,\nTom\next. 3131\n",
        occurred="today at 10:15",
        phone="ext. 3131",
        location="floor 2",
        resource="The printer HP-4200 on floor 2",
        errors=("Paper jam in tray 2",),
        first_time=False,
    ),
    "error code, site and floor, T and M lines": Case(
        "Outlook crashes when opening attachments",
        "Dear support,\n\n"
        "Every time I open a PDF attachment Outlook freezes and then closes. The event log shows error"
        " 0x80070005. I'm working from the Basel site, 3rd floor.\n\n"
        "It started on Monday after the Windows update.\n\n"
        "Kind regards,\nPriya Sharma\nProcurement | ACME AG\nT +41 61 555 01 23 | M +41 79 555 44 33\n",
        occurred="on Monday",
        phone="+41 61 555 01 23",
        location="Basel site, 3rd floor",
        resource="Outlook",
        errors=("error 0x80070005",),
    ),
    "oracle error, and the last time it worked is not the occurrence": Case(
        "SAP report fails",
        "Hi team,\n\n"
        "When I run the monthly sales report in SAP I get ORA-12154: TNS:could not resolve the connect"
        " identifier specified. This is the first time I see this, it worked fine last week.\n\n"
        "Could someone have a look?\n\nThanks\nJürgen\n",
        resource="SAP report",
        errors=("ORA-12154: TNS:could not resolve the connect identifier specified",),
        first_time=True,
    ),
    "german printer": Case(
        "Drucker im 2. Stock druckt nicht",
        "Hallo zusammen,\n\n"
        "seit heute Morgen druckt der Drucker im 2. Stock (Gebäude C, Raum 204) nicht mehr. Am Display steht"
        ' "Fehler 49.4C02 - Ausschalten und wieder einschalten". Das Problem tritt schon wieder auf,'
        " letzte Woche hatten wir das gleiche.\n\n"
        "Mit freundlichen Grüssen\nHans Müller\nTel. 044 634 12 34\n",
        occurred="seit heute Morgen",
        phone="044 634 12 34",
        location="2. Stock, Gebäude C, Raum 204",
        resource="Drucker",
        errors=("Fehler 49.4C02 - Ausschalten und wieder einschalten",),
        first_time=False,
    ),
    "french printer": Case(
        "Problème imprimante",
        "Bonjour,\n\n"
        'Depuis hier, l\'imprimante de la salle 12 (bâtiment C, 3e étage) affiche "Erreur 50.1 - Fusion".'
        " C'est la première fois que cela arrive.\n\n"
        "Cordialement,\nMarie Dupont\nTél : 01 23 45 67 89\n",
        occurred="Depuis hier",
        phone="01 23 45 67 89",
        location="salle 12, bâtiment C, 3e étage",
        resource="imprimante",
        errors=("Erreur 50.1 - Fusion",),
        first_time=True,
    ),
    "html mail with a table in the signature": Case(
        "Leave request",
        html_to_text(
            "<html><body><p>Hi,</p><p>the <b>HR portal</b> shows <i>&quot;403 Forbidden&quot;</i>"
            " since&nbsp;Monday when I open the leave request form.</p>"
            "<table><tr><td>Phone</td><td>+41&nbsp;44 123 45 67</td></tr>"
            "<tr><td>Location</td><td>Building A, room 1.05</td></tr></table>"
            "<p>Best regards<br>Sam</p></body></html>"
        ),
        occurred="since Monday",
        phone="+41 44 123 45 67",
        location="Building A, room 1.05",
        resource="the HR portal",
        errors=("403 Forbidden",),
    ),
    "html mail from outlook with a signature table": Case(
        "Expenses",
        html_to_text(
            "<div>Hello,</div><div>&nbsp;</div><div>The <span style='color:red'>Workday</span> expense page"
            " shows an error “Your session has timed out” every time I submit – since last Friday.</div>"
            "<div>&nbsp;</div><div>Kind regards</div><div><b>Oliver Smith</b></div>"
            "<table><tr><td>T</td><td>+44&nbsp;161&nbsp;555&nbsp;0199</td></tr>"
            "<tr><td>Office</td><td>Manchester, 5th floor</td></tr></table>"
        ),
        occurred="since last Friday",
        phone="+44 161 555 0199",
        location="Manchester, 5th floor",
        resource="The Workday expense page",
        errors=("Your session has timed out",),
    ),
    "labelled form": Case(
        "Approvals broken",
        "Date & Time: 2026-11-02 09:15\n"
        "Caller: Peter Brown, +44 20 7946 0958\n"
        "Location: Lab E-17, Chemistry building\n"
        "Module: Timesheets / Approvals\n"
        'Description: Approve button gives "Unexpected error (500)". First time this happens.\n',
        occurred="2026-11-02 09:15",
        phone="+44 20 7946 0958",
        location="Lab E-17, Chemistry building",
        resource="Timesheets / Approvals",
        errors=("Unexpected error (500)",),
        first_time=True,
    ),
    "american phone, named meeting room": Case(
        "Phone in Conference Room B",
        "Hello,\n\n"
        "Our conference room phone in Conference Room B stopped working yesterday afternoon. No dial tone"
        " at all.\n\nYou can reach me at (555) 123-4567.\n\nThanks!\nKim\n",
        occurred="yesterday afternoon",
        phone="(555) 123-4567",
        location="Conference Room B",
        resource="Phone",
        loose=frozenset({"resource"}),
    ),
    "login page, http status, time and day": Case(
        "Intranet login",
        "Hi there,\n\n"
        "Getting HTTP 500 on the login page of the intranet since about 8:30 this morning. Tried Chrome and"
        " Firefox, same thing. Colleagues next to me (2nd floor, office 2.07) have it too.\n\n"
        "Cheers,\nLena\n+49 30 1234567\n",
        occurred="since about 8:30 this morning",
        phone="+49 30 1234567",
        location="2nd floor, office 2.07",
        resource="Intranet",
        errors=("HTTP 500",),
    ),
    "german vpn": Case(
        "VPN",
        "Guten Tag\n\n"
        "Seit Montag kann ich mich nicht mehr mit dem VPN verbinden (FortiClient). Es kommt die"
        " Fehlermeldung:"
        ' "Credential or SSLVPN configuration is wrong (-7200)". Das passiert jeden Tag.\n\n'
        "Freundliche Grüsse\nSabine Keller\nMobile: +41 79 123 45 67\n",
        occurred="Seit Montag",
        phone="+41 79 123 45 67",
        resource="VPN",
        errors=("Credential or SSLVPN configuration is wrong (-7200)",),
        first_time=False,
    ),
    "french mail server": Case(
        "Envoi impossible",
        "Bonjour,\n\n"
        "Je n'arrive plus à envoyer de mails depuis ce matin vers 8h30, le message d'erreur est :"
        " « Le serveur"
        " SMTP a refusé la connexion ». Jamais eu ce problème avant.\n\n"
        "Merci d'avance\nLuc Martin\nBureau 214, bâtiment B\nTél. 04 72 12 34 56\n",
        occurred="depuis ce matin vers 8h30",
        phone="04 72 12 34 56",
        location="Bureau 214, bâtiment B",
        resource="Le serveur SMTP",
        errors=("Le serveur SMTP a refusé la connexion",),
        first_time=True,
    ),
    "headset in teams, happening again": Case(
        "headset",
        "hey,\nmy headset keeps dropping out in Teams calls. its happening again today, had the same issue"
        " last month.\nthx\nRaj\n",
        occurred="today",
        resource="headset",
        first_time=False,
    ),
    "python traceback": Case(
        "Nightly export",
        "Hi,\n\nthe nightly export job on the reporting server crashed at 02:00 with:\n\n"
        "Traceback (most recent call last):\n"
        '  File "export.py", line 42, in <module>\n'
        "    main()\n"
        "KeyError: 'customer_id'\n\n"
        "Can you check? It also failed last night.\n\nThanks, Omar\n",
        occurred="at 02:00",
        resource="the reporting server",
        errors=("KeyError: 'customer_id'",),
    ),
    "java exception": Case(
        "Booking app",
        "Hello support,\n\n"
        "Since the deployment yesterday the booking app throws java.lang.NullPointerException: Cannot invoke"
        ' "String.length()" because "name" is null when I click Save.\n\n'
        "Regards,\nDev Patel\nPhone: 020 7946 0321\n",
        occurred="yesterday",
        phone="020 7946 0321",
        resource="Booking app",
        errors=(
            'java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null'
            " when I click Save",
        ),
    ),
    "german, short, from an iphone": Case(
        "Outlook",
        "Outlook startet nicht mehr, Fehler 0x800CCC0E. Bitte um Rückruf 079 444 55 66\n\n"
        "Von meinem iPhone gesendet\n",
        phone="079 444 55 66",
        resource="Outlook",
        errors=("Fehler 0x800CCC0E",),
    ),
    "fax before the phone": Case(
        "Scans",
        "Hi,\nthe scanner on the 4th floor sends scans to nowhere since Tuesday.\n\n"
        "Best,\nClaire Dubois\nFacility Management\nFax +41 22 555 00 00\nTel +41 22 555 00 11\n",
        occurred="since Tuesday",
        phone="+41 22 555 00 11",
        location="4th floor",
        resource="the scanner on the 4th floor",
    ),
    "the desk's hotline is not the caller's phone": Case(
        "Projector",
        "Hello,\nI tried to call the support hotline on 3080 this morning but nobody answered. The projector"
        " in meeting room Everest does not turn on.\nRegards\nBen\n",
        occurred="this morning",
        location="meeting room Everest",
        resource="The projector in meeting room Everest",
    ),
    "error line of its own": Case(
        "Invoice",
        "Hi,\n\nI get this when saving an invoice in Abacus:\n\n"
        "Error: Document number already exists (code 1045)\n\n"
        "Happened for the first time today at 11:20.\n\n"
        "Best regards\nNina Vogel\nAccounting, Building 3, Room 3.12\nDirect: +41 31 555 66 77\n",
        occurred="today at 11:20",
        phone="+41 31 555 66 77",
        location="Building 3, Room 3.12",
        resource="Abacus",
        errors=("Document number already exists (code 1045)",),
        first_time=True,
    ),
    "a deadline and a start date are not the occurrence": Case(
        "New colleague",
        "Hi,\n\nPlease set up access to the Finance share for our new colleague by 15.11.2026. She starts on"
        " Monday.\n\nThanks\nEva\n",
        resource="the Finance share",
    ),
    "order, invoice and serial numbers are not phones": Case(
        "Damaged laptop",
        "Hi,\n\nOrder 4711-2231-99 arrived damaged. Invoice no. 2026-000123, asset tag 123456789. Laptop"
        " serial"
        " 5CD1234XYZ.\nThe screen flickers since it was delivered.\n\nThanks\nMark\n",
        resource="laptop",
    ),
    "german date and time, compound noun": Case(
        "Zeiterfassung",
        "Guten Morgen,\n\n"
        "am 02.11.2026 um 14:30 ist das Zeiterfassungssystem abgestürzt und seitdem kann ich keine Stunden"
        " mehr erfassen.\n\nViele Grüße\nPetra\n",
        occurred="am 02.11.2026 um 14:30",
        resource="das Zeiterfassungssystem",
    ),
    "typos, stop code, cell label": Case(
        "pc broke",
        "helo,\n\nmy compuer wont start, blue screen with STOP code 0x0000007B. happend 3 times allready this"
        " week. im in bldg 4 room 118\n\nJake\ncell 555-867-5309\n",
        phone="555-867-5309",
        location="bldg 4, room 118",
        resource="pc",
        errors=("STOP code 0x0000007B",),
    ),
    "not the first time": Case(
        "Wi-Fi in the library",
        "Hi,\nThis is not the first time the Wi-Fi in the library drops. It happened again around 3pm.\n"
        "Regards, Ana\n",
        occurred="around 3pm",
        resource="Wi-Fi",
        first_time=False,
    ),
    "short internal number when labelled": Case(
        "Docking station",
        "Hi,\nmy docking station in room 4.21 no longer charges the laptop since this afternoon. Please call"
        " me"
        " on 3131.\nThanks\nChris\n",
        occurred="since this afternoon",
        phone="3131",
        location="room 4.21",
        resource="Docking station",
    ),
    "a plain request": Case(
        "keyboard",
        "Hello,\nI need a new keyboard, the letters are worn off.\nBest\nUlla\n",
        resource="keyboard",
    ),
    "a page by its address": Case(
        "Timesheets",
        "Hi,\nhttps://intranet.example.com/timesheets returns 404 Not Found since the weekend.\nTanja\n",
        occurred="since the weekend",
        resource="https://intranet.example.com/timesheets",
        errors=("404 Not Found",),
    ),
    "french vpn, hours ago": Case(
        "VPN",
        "Bonjour,\n\n"
        "Il y a deux heures, le VPN s'est déconnecté et depuis impossible de me reconnecter. Message :"
        ' "Authentication failed". C\'est la troisième fois cette semaine.\n\n'
        "Bien à vous,\nJean Rochat\n+33 6 12 34 56 78\n",
        occurred="Il y a deux heures",
        phone="+33 6 12 34 56 78",
        resource="VPN",
        errors=("Authentication failed",),
        first_time=False,
    ),
    "everything in the subject": Case(
        "Re: [MD-1042] SharePoint site slow since 2026-11-02",
        "Any news?\n\n> On Mon, 2 Nov 2026, Support wrote:\n> we are looking into it\n",
        occurred="since 2026-11-02",
        resource="SharePoint site",
    ),
    "german signature with building and room": Case(
        "Zertifikat",
        "Hallo Support,\n\n"
        "beim Öffnen der Anmeldeseite bekomme ich seit gestern 16 Uhr die Meldung „Zertifikat ungültig“."
        " Das ist zum ersten Mal passiert.\n\n"
        "Gruss\nReto Brunner\nGebäude HG, Raum F 33.1\nTelefon 044 632 11 22\n",
        occurred="seit gestern 16 Uhr",
        phone="044 632 11 22",
        location="Gebäude HG, Raum F 33.1",
        resource="der Anmeldeseite",
        errors=("Zertifikat ungültig",),
        first_time=True,
    ),
    "hours in english-german": Case(
        "SAP GUI hangs",
        "Hi,\nSAP GUI is not responding since 2 hours for about 12 users in our team. Transaction VA01"
        " hangs.\nBR\nStefan\n",
        occurred="since 2 hours",
        resource="SAP GUI",
    ),
    "a gateway's external-sender banner is no error; retries say nothing about recurrence": Case(
        "Moodle login",
        "CAUTION: This email originated from outside the organization. Do not click links unless you"
        " recognize the sender.\n\nHi,\nI tried several times to log in to Moodle this morning, it always"
        ' says "Invalid login, please try again".\n\nThanks\nMia\n',
        occurred="this morning",
        resource="Moodle",
        errors=("Invalid login, please try again",),
    ),
    "an office phone and a web site in the signature are no location": Case(
        "Printer",
        "Hi, the printer is broken since Monday.\nBest regards\nAnna\nOffice: +41 44 123 45 67\n"
        "Site: www.acme.example\n",
        occurred="since Monday",
        phone="+41 44 123 45 67",
        resource="Printer",
    ),
    "future plans are not the occurrence": Case(
        "Visit",
        "Hello,\n\nI will be in the office tomorrow at 10:00, could you come by then to set up my second"
        " monitor? Thanks!\n\nKaren\n",
        resource="my second monitor",
    ),
    "excel crash after an update": Case(
        "Excel keeps crashing",
        "Hi,\nExcel crashes every time I open the budget workbook from SharePoint. It started after "
        'Tuesday\'s update. Error in the event log: "Faulting application name: EXCEL.EXE".\nThanks\nBob '
        "Stone | +44 7700 900456",
        phone="+44 7700 900456",
        resource="Excel",
        errors=("Faulting application name: EXCEL.EXE",),
        first_time=False,
        misses={"occurred": "after Tuesday's update"},
    ),
    "german, no internet on a floor": Case(
        "Kein Internet im Büro",
        "Hallo,\n\nseit ca. 10 Uhr haben wir im 4. OG (Gebäude West) kein Internet mehr, weder per Kabel "
        "noch WLAN. Betroffen sind etwa 20 Personen.\n\nGruss\nTanja Meier\nDurchwahl 2317",
        occurred="seit ca. 10 Uhr",
        phone="Durchwahl 2317",
        location="4. OG, Gebäude West",
        resource="Internet",
        loose=frozenset({"resource"}),
    ),
    "french teams meeting, poste": Case(
        "Problème de connexion Teams",
        "Bonjour,\n\nDepuis lundi dernier, je ne peux plus rejoindre les réunions Teams depuis mon "
        "ordinateur portable. J'ai le message « Nous n'avons pas pu vous connecter ». \n\nCordialement,\n"
        "Pierre Lambert\nPoste 5521",
        occurred="Depuis lundi dernier",
        phone="Poste 5521",
        resource="Teams",
        errors=("Nous n'avons pas pu vous connecter",),
    ),
    "all lower case, us number": Case(
        "urgent!! cant login",
        "cant log into workday since 8am, says my account is locked. pls reset asap, call 312-555-0198",
        occurred="since 8am",
        phone="312-555-0198",
        misses={"resource": "workday"},
    ),
    "blue screen with a symbolic stop code": Case(
        "Blue screen on boot",
        "Hello,\n\nMy Dell Latitude 5420 shows a blue screen with stop code CRITICAL_PROCESS_DIED at every "
        "boot since yesterday evening. I'm on the 6th floor, desk 6.42.\n\nRegards,\nFatima\nMobile +33 6 "
        "98 76 54 32",
        occurred="since yesterday evening",
        phone="+33 6 98 76 54 32",
        location="6th floor, desk 6.42",
        errors=("stop code CRITICAL_PROCESS_DIED",),
        misses={"resource": "Dell Latitude 5420"},
    ),
    "reply above an outlook header block": Case(
        "RE: [MD-3310] Printer",
        "Hi, it's the big copier in the print room on level 3 (Ricoh MP C6004). Error SC 542 shows on the "
        "panel.\n\nKind regards\nMartin\n\n-----Original Message-----\nFrom: Support <support@example.com>\n"
        "Sent: Tuesday, 3 November 2026 11:00\nTo: Martin\nSubject: [MD-3310] Printer\n\nWhich printer is "
        "it, and what does the display say? Call us on 3080.\n",
        location="level 3",
        resource="the big copier",
        errors=("Error SC 542",),
        loose=frozenset({"resource"}),
    ),
    "german calendar sync, had it before": Case(
        "Outlook Kalender synchronisiert nicht",
        "Hallo zusammen\n\nMein Outlook-Kalender synchronisiert seit gestern nicht mehr mit dem iPhone. "
        "Termine, die ich am Handy erfasse, erscheinen nicht im Outlook. Das Problem hatte ich schon mal im "
        "Sommer.\n\nViele Grüsse\nJonas Keller\nT +41 44 555 66 00\n",
        occurred="seit gestern",
        phone="+41 44 555 66 00",
        resource="Outlook",
        first_time=False,
    ),
    "timesheet, past day and a deadline": Case(
        "Timesheet submission",
        "Hi,\n\nI couldn't submit my timesheet on Friday because the Submit button was greyed out. Payroll "
        "closes tomorrow, so please help before then.\n\nThanks,\nEmma Clarke\nFinance, 2nd floor\n020 7946 "
        "0777",
        occurred="on Friday",
        phone="020 7946 0777",
        location="2nd floor",
        misses={"resource": "timesheet"},
    ),
    "power bi, single-quoted error after failed with": Case(
        "Power BI refresh failing",
        "Hello,\n\nThe scheduled refresh of the Sales dashboard in Power BI has failed since Saturday with "
        "'The credentials provided for the SQL source are invalid'.\n\nBR,\nHiro Tanaka",
        occurred="since Saturday",
        resource="the Sales dashboard",
        errors=("The credentials provided for the SQL source are invalid",),
    ),
    "french phone in a room": Case(
        "Téléphone salle B204",
        "Bonjour, le téléphone de la salle B204 n'a plus de tonalité depuis hier après-midi. Vous pouvez me "
        "joindre au 01 45 67 89 10. Merci, Julie",
        occurred="depuis hier après-midi",
        phone="01 45 67 89 10",
        location="salle B204",
        misses={"resource": "téléphone"},
    ),
    "a licence question with a future date": Case(
        "Question about licences",
        "Hi,\n\nHow many Adobe Acrobat licences do we have left? We need 5 more for the new team starting "
        "on 1 December.\n\nCheers,\nOwen",
        resource="Adobe Acrobat",
    ),
    "vpn, first time seen though several times today": Case(
        "VPN drops",
        "Hi,\n\nThe VPN disconnects every 10-15 minutes. It has happened 4 times this morning already, "
        "always with 'Connection terminated by peer'. First time I've seen this.\n\nThanks\nAli\n+1 (604) "
        "555-0171",
        occurred="this morning",
        phone="+1 (604) 555-0171",
        resource="VPN",
        misses={"errors": ("Connection terminated by peer",), "first_time": True},
    ),
    "german date and time before a past verb": Case(
        "Fehler beim Drucken",
        "Guten Tag\n\nAm 4.11.2026 gegen 15:40 Uhr kam beim Drucken aus SAP die Fehlermeldung "
        '"Spool-Auftrag konnte nicht erstellt werden". Drucker: KM-C458 im 1. Stock.\n\nMfG\nR. Baumann',
        occurred="Am 4.11.2026 gegen 15:40 Uhr",
        location="1. Stock",
        resource="Drucker KM-C458",
        errors=("Spool-Auftrag konnte nicht erstellt werden",),
        loose=frozenset({"resource"}),
    ),
    "html signature with fax, phone and office": Case(
        "SharePoint team site error",
        G14_HTML,
        occurred="Since the weekend",
        phone="+49 40 555 0123",
        location="Hamburg HQ, Room 4.12",
        resource="SharePoint team site",
        errors=("Sorry, something went wrong",),
    ),
    "worked until yesterday": Case(
        "Scanner to email",
        'Scan to email on the MFP in the mailroom worked until yesterday. Now it gives "SMTP authentication '
        'failed" for everyone.\n\nJ. Park\nExt 220',
        phone="Ext 220",
        resource="the MFP",
        errors=("SMTP authentication failed",),
        loose=frozenset({"resource"}),
    ),
    "a quoted button is no error": Case(
        "How to change the default printer",
        'Hi,\n\nin Word, when I click "Print" the default printer is still the old one on floor 1. How do I '
        "change it to the new one?\n\nThanks\nSara",
        location="floor 1",
        resource="the default printer",
    ),
    "german, like last month is not the occurrence": Case(
        "Monitor flackert",
        "Hallo, mein zweiter Monitor flackert schon wieder, wie letzten Monat. Ich sitze im Raum 1.23. "
        "Bitte kurz anrufen: 079 123 45 67. Danke, Vera",
        phone="079 123 45 67",
        location="Raum 1.23",
        resource="Monitor",
        first_time=False,
    ),
    "for three days now": Case(
        "Slack notifications",
        "Hey, I haven't been getting Slack notifications on my Mac for 3 days now. Checked the settings, "
        "all on.\n\nJamie",
        occurred="for 3 days now",
        resource="Slack",
    ),
    "json error body": Case(
        "API errors",
        'Hi,\n\nour integration gets this since 2026-11-04 07:30 UTC:\n\n{"status": 401, "error": '
        '"invalid_client", "message": "Client authentication failed"}\n\nCan you check the API gateway?\n\n'
        "Thanks\nDev team",
        occurred="since 2026-11-04 07:30",
        errors=(
            "invalid_client",
            "Client authentication failed",
        ),
        misses={"resource": "the API gateway"},
    ),
    "the support line's number is not the caller's": Case(
        "Question facture",
        "Bonjour,\n\nSur votre site il est écrit d'appeler le support au 0800 123 456, mais personne ne "
        "répond. Ma question concerne la facture 2026-118.\n\nCordialement,\nAnne",
    ),
    "outlook attachments, direct line": Case(
        "Cannot open attachments",
        "Hi there,\n\nsince this morning I can't open any PDF attachments in Outlook, I just get \"Cannot "
        "open file: access denied\". Restarting didn't help.\n\nKind regards\nHelen Ward\nProcurement\n"
        "Direct line: +44 113 496 0123\n",
        occurred="since this morning",
        phone="+44 113 496 0123",
        resource="Outlook",
        errors=("Cannot open file: access denied",),
    ),
    "german paper jam, first time": Case(
        "Drucker Raum 2.05",
        'Hallo\n\nDer Drucker in Raum 2.05 zieht seit Montag kein Papier mehr ein. Anzeige: "Papierstau '
        'Fach 2". Das ist das erste Mal.\n\nLG\nNadine\n',
        occurred="seit Montag",
        location="Raum 2.05",
        resource="Drucker",
        errors=("Papierstau Fach 2",),
        first_time=True,
    ),
    "french slow network on a floor of a building": Case(
        "Internet lent",
        "Bonjour,\n\nDepuis mardi, la connexion est très lente au 3e étage du bâtiment A. Les pages web "
        "mettent plus d'une minute à charger.\n\nMerci de votre aide\nKarim\nTél : 04 91 23 45 67\n",
        occurred="Depuis mardi",
        phone="04 91 23 45 67",
        location="3e étage, bâtiment A",
    ),
    "new phone, authenticator": Case(
        "MFA not working on new phone",
        "Hi,\n\nI got a new phone yesterday and now the Authenticator app doesn't show my work account "
        "anymore, so I'm locked out of everything. Please call me on my mobile 0412 345 678.\n\nCheers\n"
        "Tom\n",
        occurred="yesterday",
        phone="0412 345 678",
        resource="MFA",
    ),
    "loud fan for the last few days": Case(
        "Laptop fan loud",
        "Hello,\n\nmy laptop fan has been really loud for the last few days, even when nothing is running. "
        "Not urgent.\n\nBest\nIris\n",
        occurred="for the last few days",
        resource="Laptop",
    ),
    "happened again last night, oracle": Case(
        "Re: [MD-4100] Database timeout",
        "Hello,\n\nit happened again at 03:10 last night: the nightly job on the reporting database failed "
        "with ORA-01013: user requested cancel of current operation.\n\nRegards\nVik\n\nOn Wed, 4 Nov 2026 "
        "at 08:00, Support <support@example.com> wrote:\n> Please tell us when it happens again.\n",
        occurred="at 03:10 last night",
        resource="the reporting database",
        errors=("ORA-01013: user requested cancel of current operation",),
        first_time=False,
    ),
    "one line with an extension in brackets": Case(
        "Account locked",
        'Hi, my account got locked after the password change on Monday. Error when logging in: "Your '
        'account has been locked. Contact your support person to unlock it." Thx, Ben (ext. 2245)',
        occurred="on Monday",
        phone="ext. 2245",
        errors=("Your account has been locked. Contact your support person to unlock it",),
    ),
    "german projector in a named meeting room": Case(
        "Beamer im Sitzungszimmer Eiger",
        "Guten Morgen\n\nder Beamer im Sitzungszimmer Eiger (Gebäude B, 2. OG) schaltet sich nach ein paar "
        "Minuten aus. Wir haben um 14 Uhr eine Kundenpräsentation, bitte dringend!\n\nGrüsse\nStefan Frei\n"
        "+41 31 555 12 00\n",
        phone="+41 31 555 12 00",
        location="Sitzungszimmer Eiger, Gebäude B, 2. OG",
        resource="Beamer",
    ),
    "a new starter request": Case(
        "New starter accounts",
        "Hi,\n\nplease create accounts for our new starter Lisa Brown who joins on 16 November. She needs "
        "Outlook, Teams and access to the Finance share.\n\nThanks\nMike\n",
        resource="Outlook",
    ),
    "website down since a time today": Case(
        "Website down",
        "Our public website shows HTTP 503 since 11:05 today. Customers are calling. Please call me asap: "
        "+1 415 555 0134 -- Greg",
        occurred="since 11:05 today",
        phone="+1 415 555 0134",
        resource="Our public website",
        errors=("HTTP 503",),
    ),
    "scanner jams, third time this week": Case(
        "Scanner",
        "The scanner on the 2nd floor keeps jamming. It's the Canon DR-C240. Third time this week!\n\nAmy",
        location="2nd floor",
        resource="The scanner on the 2nd floor",
        first_time=False,
    ),
    "french second screen": Case(
        "Monitor",
        "Bonjour, mon deuxième écran ne s'allume plus depuis ce matin. J'ai essayé un autre câble. Merci, "
        "Léa",
        occurred="depuis ce matin",
        resource="Monitor",
    ),
    "canon printer, toner message": Case(
        "Can't print",
        "Hi,\n\nI can't print to the Canon printer next to the kitchen since Monday morning. The display "
        'says "Toner low" but we replaced the toner on Friday.\n\nThanks,\nGreg Hall\nMarketing\nTel: +1 '
        "212 555 0147\n",
        occurred="since Monday morning",
        phone="+1 212 555 0147",
        resource="the Canon printer",
        errors=("Toner low",),
    ),
    "vpn error code in the subject, the last good day": Case(
        "VPN error 809",
        "Hello,\n\nWhen connecting to the VPN from home I get error 809 (The network connection between "
        "your computer and the VPN server could not be established). It worked yesterday. You can call me "
        "on 07700 900123.\n\nRegards\nPaul\n",
        phone="07700 900123",
        resource="VPN",
        errors=("error 809",),
    ),
    "german teams crash since an update": Case(
        "Teams Absturz",
        "Hallo\n\nTeams stürzt seit dem Update am Dienstag immer wieder ab, meistens wenn ich den "
        'Bildschirm teilen will. Fehlermeldung: "Wir haben ein Problem festgestellt".\n\nBeste Grüsse\n'
        "Laura Fischer\nBüro 3.08\n+41 61 555 77 88\n",
        occurred="am Dienstag",
        phone="+41 61 555 77 88",
        location="Büro 3.08",
        resource="Teams",
        errors=("Wir haben ein Problem festgestellt",),
        first_time=False,
    ),
    "french wifi in a named meeting room": Case(
        "Wifi salle de réunion",
        "Bonjour,\n\nLe wifi ne fonctionne plus dans la salle de réunion Jura au 1er étage depuis ce matin. "
        "Plusieurs collègues ont le même problème.\n\nMerci\nSophie\n06 12 34 56 78\n",
        occurred="depuis ce matin",
        phone="06 12 34 56 78",
        location="salle de réunion Jura, 1er étage",
        resource="Wifi",
    ),
    "html password reset portal": Case(
        "Password reset",
        H5_HTML,
        occurred="this morning",
        phone="+971 50 123 4567",
        resource="The password reset portal",
        errors=("Invalid token",),
    ),
    "projector in a named building, extension": Case(
        "Projector broken in lecture hall",
        "Hi,\n\nThe projector in the Main Building, room G-12 shows no signal from the HDMI input. It "
        "stopped working during my lecture at 10:00 today.\n\nProf. Ines Weber\nDepartment of Chemistry\n"
        "Ext. 4412\n",
        occurred="at 10:00 today",
        phone="Ext. 4412",
        location="the Main Building, room G-12",
        resource="Projector",
    ),
    "a disclaimer's phone is not the caller's": Case(
        "Shared drive access",
        'Hello,\n\nSince Tuesday I no longer see the S: drive on my laptop. Windows says "The network path '
        'was not found" (0x80070035).\n\nBest,\nLiam\n\nCONFIDENTIALITY NOTICE: This e-mail is intended '
        "only for the addressee. If you are not the intended recipient, please delete it. Call +1 800 555 "
        "0100 for questions.\n",
        occurred="Since Tuesday",
        resource="the S: drive",
        errors=(
            "The network path was not found",
            "0x80070035",
        ),
        loose=frozenset({"resource"}),
    ),
    "outlook keeps asking, iphone": Case(
        "Outlook asking for password again",
        "Outlook keeps asking for my password every few minutes since this afternoon. Super annoying.\n\n"
        "Sent from my iPhone",
        occurred="since this afternoon",
        resource="Outlook",
        first_time=False,
    ),
    "german projector, room and building": Case(
        "Beamer defekt",
        "Guten Tag\n\nDer Beamer im Sitzungszimmer 2.17 (Gebäude A) zeigt nur noch ein blaues Bild. Könnten "
        "Sie bitte jemanden vorbeischicken?\n\nFreundliche Grüsse\nMarkus Huber\nTel. 031 555 44 22\n",
        phone="031 555 44 22",
        location="Sitzungszimmer 2.17, Gebäude A",
        resource="Beamer",
    ),
    "sap message with a quoted text": Case(
        "Error when posting invoice",
        'Hi SAP team,\n\nPosting invoice 5100023456 in transaction MIRO fails with message F5 702 "Balance '
        'in transaction currency". This happened for the first time today around 2pm.\n\nThanks\nOlga\n',
        occurred="today around 2pm",
        resource="SAP",
        errors=("Balance in transaction currency",),
        first_time=True,
    ),
    "web form with labelled lines": Case(
        "Web form: IT issue",
        "Name: Chen Wei\nEmail: chen.wei@example.org\nPhone: 0044 20 7946 0011\nBuilding: North Wing\nRoom: "
        "214\nSystem: Moodle\nDescription: Course page shows a blank screen since the upgrade on Sunday.\n"
        "First occurrence: yes\n",
        occurred="on Sunday",
        phone="0044 20 7946 0011",
        location="North Wing, 214",
        resource="Moodle",
        first_time=True,
    ),
    "a room number is not a date": Case(
        "New laptop - docking station",
        "Hi,\n\nmy new laptop (ThinkPad T14) does not charge on the docking station on my desk in room "
        "5.03. It has never worked since I got it last week.\n\nBest regards,\nNoah\n",
        occurred="last week",
        location="room 5.03",
        resource="laptop",
    ),
    "french hr portal, date since": Case(
        "Accès refusé au portail RH",
        "Bonjour,\n\nDepuis le 3 novembre, je n'arrive plus à me connecter au portail RH : message d'erreur "
        "« Accès refusé (code 403) ». C'est la deuxième fois ce mois-ci.\n\nBien cordialement,\nClaire "
        "Morel\nBâtiment D, bureau 104\nTél. +33 1 44 55 66 77\n",
        occurred="Depuis le 3 novembre",
        phone="+33 1 44 55 66 77",
        location="Bâtiment D, bureau 104",
        resource="portail RH",
        errors=("Accès refusé (code 403)",),
        first_time=False,
    ),
    "a question with nothing to record": Case(
        "Question",
        "Hi,\n\nwho do I talk to about getting a second screen? Thanks!\n\nJo\n",
        resource="second screen",
    ),
    "a forwarded bounce holds the error": Case(
        "Fw: Undeliverable: Project update",
        "Hi, all my mails to the partner company bounce since yesterday, see below.\n\n---------- Forwarded "
        "message ---------\nFrom: Mail Delivery System <MAILER-DAEMON@example.com>\nDate: Tue, 3 Nov 2026 "
        "at 08:12\nSubject: Undeliverable: Project update\n\n550 5.7.1 Recipient address rejected: Access "
        "denied\n",
        occurred="since yesterday",
        errors=("550 5.7.1 Recipient address rejected: Access denied",),
    ),
    "german network drive": Case(
        "Laufwerk H: nicht verbunden",
        'Hallo IT,\n\nseit heute früh ist mein Netzlaufwerk H: nicht mehr verbunden. Beim Klick kommt "Auf '
        'H:\\ kann nicht zugegriffen werden". Gestern ging noch alles.\n\nDanke und Gruss\nFelix Wagner\n'
        "Telefon +49 (0)89 1234 5678\n",
        occurred="seit heute früh",
        phone="+49 (0)89 1234 5678",
        resource="Netzlaufwerk H:",
        errors=("Auf H:\\ kann nicht zugegriffen werden",),
        loose=frozenset({"resource"}),
    ),
    "zoom room, us cell number": Case(
        "Zoom Room freezing",
        "Hey team - the Zoom Room in Conference Room 3B keeps freezing during calls, third time this week. "
        "Can someone take a look before the 2pm board meeting? My cell is 415-555-0132.\n\n-Dana",
        phone="415-555-0132",
        location="Conference Room 3B",
        resource="Zoom Room",
        first_time=False,
    ),
    "jira bad gateway since a time": Case(
        "Jira down?",
        "Jira returns 502 Bad Gateway for everyone on our floor (3rd floor, Building 2) since 08:45. "
        "Screenshot attached.\n\nThanks,\nRiya\n+91 98765 43210\n",
        occurred="since 08:45",
        phone="+91 98765 43210",
        location="3rd floor, Building 2",
        resource="Jira",
        errors=("502 Bad Gateway",),
    ),
    "an access request with a future date and an employee id": Case(
        "Meeting room booking system",
        "Hello,\n\nCould you please give me access to the meeting room booking system? I need to book rooms "
        "for the workshop on 12.12.2026. My employee ID is 00482213.\n\nThank you,\nTimo\n",
        resource="meeting room booking system",
        loose=frozenset({"resource"}),
    ),
    "reply above a quoted request for information": Case(
        "Re: [MD-2001] Printer not working",
        'Hi,\n\nit\'s the Xerox printer on the 2nd floor, it shows "Error 016-720". It started this '
        "morning.\n\nBest,\nIvan\n\nOn Tue, 3 Nov 2026 at 10:02, Example Support <support@example.com> "
        "wrote:\n> Dear Ivan, could you tell us which printer and since when? Customer support phone: 3080\n",
        occurred="this morning",
        location="2nd floor",
        resource="the Xerox printer on the 2nd floor",
        errors=("Error 016-720",),
    ),
    "french short mobile": Case(
        "Écran noir",
        "Mon écran reste noir depuis 9h ce matin. Envoyé de mon iPhone",
        occurred="depuis 9h ce matin",
        resource="Écran",
    ),
    "dotnet exception, several times": Case(
        "Report export crash",
        "Hi,\n\nExporting the Q3 report to Excel crashes the finance dashboard with:\n\n"
        "System.OutOfMemoryException: Exception of type 'System.OutOfMemoryException' was thrown.\n   at "
        "Finance.Export.Run()\n\nThis has happened several times since the last release.\n\nCheers\nMo\n",
        resource="the finance dashboard",
        errors=("System.OutOfMemoryException: Exception of type 'System.OutOfMemoryException' was thrown",),
        first_time=False,
        loose=frozenset({"resource"}),
    ),
    "german sap locked user": Case(
        "SAP Login",
        "Guten Tag, seit heute Vormittag kann ich mich nicht mehr im SAP anmelden, es erscheint die Meldung "
        '"Benutzer ist gesperrt". Bitte rufen Sie mich unter 044 555 12 12 an. Gruss, Andrea',
        occurred="seit heute Vormittag",
        phone="044 555 12 12",
        resource="SAP",
        errors=("Benutzer ist gesperrt",),
    ),
    "every morning, past two weeks": Case(
        "Slow login",
        "Good morning,\n\nEvery morning at 8am my PC takes 15 minutes to log in. This has been going on for "
        "the past two weeks.\n\nRegards,\nSven Olsen\nOffice 7.21, Tower B\n",
        occurred="for the past two weeks",
        location="Office 7.21, Tower B",
        resource="my PC",
        first_time=False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fields_are_read_from_customer_mail(name: str) -> None:
    case = CASES[name]
    record = extract(case.subject, case.body)
    expected = {
        "occurred": case.occurred,
        "phone": case.phone,
        "location": case.location,
        "resource": case.resource,
        "errors": case.errors,
        "first_time": case.first_time,
    }
    got = {key: getattr(record, key) for key in expected}
    for key in case.loose:
        got[key] = expected[key] = bool(getattr(record, key))
    for key, wanted in case.misses.items():
        assert got[key] in ("", (), None, wanted), key  # nothing yet, or what a person would record
        got[key] = expected[key]
    assert got == expected


def test_quoted_history_gives_nothing_away() -> None:
    """Dates in the attribution, the desk's phone and its words in the quote are not the customer's."""
    body = (
        "Hi, still no luck with the VPN, same error as before.\n\n"
        "On Mon, 2 Nov 2026 at 09:15, Example Support <support@example.com> wrote:\n"
        "> Dear customer,\n"
        "> we have opened ticket MD-1042. Customer support phone number: 3080 or 3131.\n"
        '> Since this morning our printer in Building B, room 2.14 shows "Error 42".\n'
        "> Please tell us the date and time the problem occurred.\n"
    )
    record = extract("Re: [MD-1042] VPN", body)
    assert record == IssueRecord(resource="VPN", first_time=False)


def test_unquoted_history_below_an_outlook_header_is_ignored() -> None:
    body = (
        "Thanks, it's working now.\n\n"
        "From: Example Support <support@example.com>\n"
        "Sent: Monday, November 2, 2026 9:15 AM\n"
        "To: Jane Roe <jane@example.org>\n"
        "Subject: [MD-1042] Printer in room 3.12\n\n"
        "Dear Jane, call us on 044 555 30 80 if the printer on the 3rd floor fails again. Error: none.\n"
    )
    assert extract("RE: [MD-1042] Thanks", body) == IssueRecord()


def test_the_desk_signature_in_a_pasted_acknowledgement_is_not_the_callers_phone() -> None:
    body = (
        "See below, still broken.\n\n"
        "Dear customer, thank you for writing to Example Support.\n"
        "Customer support phone number: 3080 or 3131\n"
        "Service desk: +41 44 555 30 80\n"
    )
    assert extract("Printer", body).phone == ""


def test_missing_lists_what_is_absent_in_seed_order() -> None:
    phrases = dict(FIELDS)
    assert IssueRecord().missing() == [phrase for _, phrase in FIELDS]
    record = IssueRecord(phone="+41 44 123 45 67", errors=("Access denied",), first_time=False)
    assert record.missing() == [phrases["occurred"], phrases["location"], phrases["resource"]]
    full = IssueRecord("yesterday", "3131", "room 2.14", "VPN", ("E-42",), True)
    assert full.missing() == []


def test_missing_follows_a_real_mail() -> None:
    record = extract(CASES["german vpn"].subject, CASES["german vpn"].body)
    assert record.missing() == [
        "the building and room, if the problem is on site",
    ]


def test_as_dict_is_plain_data() -> None:
    record = IssueRecord(occurred="since Monday", errors=("E-42",), first_time=True)
    assert record.as_dict() == {
        "occurred": "since Monday",
        "phone": "",
        "location": "",
        "resource": "",
        "errors": ["E-42"],
        "first_time": True,
    }


def test_field_names_match_the_record() -> None:
    assert [name for name, _ in FIELDS] == list(IssueRecord().as_dict())


# Pieces of real-looking mail, so that generated text reaches the interesting branches.
FRAGMENTS = (
    "since", "this morning", "yesterday at 14:30", "seit Montag", "depuis hier", "am 02.11.2026 um 9:15",
    "+41 44 123 45 67", "ext. 3131", "call me on", "Tel:", "T ", "Fax", "(555) 123-4567", "Building B",
    "room 2.14", "3rd floor", "2. Stock", "salle 12", "the billing module", "printer HP-4200", "VPN",
    "Error:", '"', "“", "'", "0x80070005", "ORA-12154:", "HTTP 500", "again", "first time", "not the",
    "never happened before", "> ", "On Mon, 2 Nov 2026, A <a@b.c> wrote:", "\n", " ", ".", ",", ":", "|",
    "https://x.example/a", "KeyError: 'x'", "java.lang.NullPointerException", "Best regards", "--", "İ",
    "\x00",
)  # fmt: skip
mail_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(subject=st.text(max_size=200) | mail_text, body=st.text(max_size=2000) | mail_text)
def test_extract_never_raises_and_missing_never_lists_a_present_field(subject: str, body: str) -> None:
    record = extract(subject, body)
    phrases = dict(FIELDS)
    missing = record.missing()
    present = {
        "occurred": record.occurred,
        "phone": record.phone,
        "location": record.location,
        "resource": record.resource,
        "errors": record.errors,
        "first_time": record.first_time is not None,
    }
    for name, value in present.items():
        assert (phrases[name] in missing) == (not value)
    assert all(isinstance(error, str) and error for error in record.errors)
