#!/usr/bin/env python3
"""Regenerate the PDF and DOCX files of the sample corpus.

The sample corpus (samples/corpus/) is mostly hand-written text (Markdown, HTML, plain text,
e-mail, JSONL, CSV). The PDF and Word documents cannot be edited by hand in a diff-friendly
way, so their content lives in this script and the generated files are checked in next to the
other documents.

Usage (needs reportlab and python-docx):

    python samples/build_binary_docs.py            # writes all PDF/DOCX files
    python samples/build_binary_docs.py --check    # exits 1 if a generated file is missing

The output is deterministic: PDFs are written in reportlab's "invariant" mode and the DOCX
zip entries get a fixed timestamp, so regenerating without content changes gives identical
bytes.

Content blocks
--------------
Each document is a list of blocks:
    ("h1", text)          document title       -> big bold text (PDF) / Heading 1 (DOCX)
    ("h2", text)          section heading      -> bold 14 pt (PDF) / Heading 2 (DOCX)
    ("h3", text)          sub-section heading  -> bold 12 pt (PDF) / Heading 3 (DOCX)
    ("p", text)           paragraph; **double asterisks** mark bold runs
    ("ul", [items])       bulleted list
    ("ol", [items])       numbered list
    ("table", [rows])     first row is the header
    ("pagebreak",)        explicit page break
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import re
import sys
import zipfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
FIXED_DATE = _dt.datetime(2025, 9, 1, 12, 0, 0)
AUTHOR = "Nordhaven Supply Co."

# ---------------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------------

AURORA_SPEC = [
    ("h1", "Aurora X2 Rechargeable Headlamp - Specification Sheet"),
    ("p", "Model **Aurora X2** | SKU NH-AX2 | Price $59.95 | Nordhaven Supply Co., Portland, Oregon"),
    (
        "p",
        "The Aurora X2 is a 650-lumen rechargeable headlamp for hiking, trail running, climbing "
        "approaches and camp chores. A single button, a tilting head and a removable 18650 cell "
        "keep it simple to use and easy to keep going on long trips.",
    ),
    ("h2", "Light output"),
    (
        "table",
        [
            ["Mode", "Output", "Runtime (full 3500 mAh cell)", "Beam distance"],
            ["High", "650 lumens", "2.5 hours", "120 m"],
            ["Medium", "300 lumens", "6 hours", "80 m"],
            ["Low", "60 lumens", "30 hours", "35 m"],
            ["Red", "10 lumens", "80 hours", "-"],
            ["SOS", "flashing", "about 40 hours", "-"],
        ],
    ),
    (
        "p",
        "Thermal step-down: after **3 minutes** on High the lamp reduces output to 300 lumens to "
        "manage heat. Double-click to return to High.",
    ),
    ("h2", "Power"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Battery", "1 x 18650 Li-ion, 3500 mAh, 3.6 V (12.6 Wh), removable, included"],
            ["Charging port", "USB-C (input only)"],
            ["Charging time", "about 4 hours from empty with a 5 V / 2 A adapter"],
            ["Charge indicator", "red while charging, green when full; blinks red below 10%"],
            ["Charging temperature", "0 C to 40 C"],
            ["Spare battery", "NH-18650-35, $14.95 (button-top 18650, 65-68 mm)"],
        ],
    ),
    ("h2", "Build"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Water resistance", "IPX7 - immersion to 1 m for 30 minutes"],
            ["Weight", "98 g including battery and headband"],
            ["Housing", "anodized aluminium and polycarbonate"],
            ["Head tilt", "60 degrees in 5 click stops"],
            ["Headband", "25 mm elastic, reflective, hand-washable"],
            ["Operating temperature", "-20 C to 45 C (-4 F to 113 F)"],
            ["Lockout", "hold the button 3 seconds while off (lamp flashes twice)"],
        ],
    ),
    ("h2", "Warranty and support"),
    (
        "p",
        "Lamp: 2-year limited warranty. 18650 battery: 1-year warranty. Support: support@nordhaven.example, 1-800-555-0142.",
    ),
]

CASCADE_SETUP = [
    ("h1", "Cascade 2P Tent - Setup Guide"),
    ("p", "SKU NH-C2P | Freestanding 3-season tent for 2 people | Nordhaven Supply Co."),
    (
        "p",
        "With a little practice the Cascade 2P goes up in **about 5 minutes**. Pitch it once at "
        "home or in a park before your first trip so you know every part. Everything is "
        "colour-coded: **red** pole tips go into **red** corner webbing (the door corners) and "
        "grey tips go into grey webbing.",
    ),
    ("h2", "What is in the stuff sack"),
    (
        "ul",
        [
            "Inner tent (mesh and 15D nylon) with 14 pole clips",
            "Rainfly (20D ripstop nylon, 3000 mm)",
            "Hubbed pole set (9 mm DAC aluminium) in a pole bag",
            "12 aluminium Y-stakes in a stake bag",
            "4 reflective guy lines, already attached to the fly",
            "Aluminium pole repair sleeve",
        ],
    ),
    ("h2", "1. Choose your site"),
    (
        "p",
        "Look for flat, cleared ground that is slightly higher than its surroundings, so rain does "
        "not pool under the floor. Avoid dips, dry stream beds and dead branches overhead. Point "
        "the narrow foot end of the tent into the wind.",
    ),
    ("h2", "2. Lay out the tent"),
    (
        "p",
        "If you use the Cascade 2P footprint (NH-C2P-FP), spread it out first with the grey side "
        "down. Lay the inner tent on top with the floor down and the doors where you want them.",
    ),
    ("h2", "3. Assemble the poles"),
    (
        "p",
        "Take the pole set out of the bag and let the shock cord pull the sections together. Make "
        "sure every section is fully seated: a half-seated joint is the most common cause of a "
        "cracked pole. The hub sits in the middle and the four pole ends spread out like an X, "
        "with a short cross pole over the doors.",
    ),
    ("h2", "4. Attach the poles to the inner tent"),
    (
        "ol",
        [
            "Put the two red pole tips into the grommets of the red corner webbing.",
            "Flex the poles and put the two grey tips into the grey corner grommets. The tent now stands up on its own.",
            "Clip the 14 plastic clips to the poles, starting at the hub and working down.",
            "Put the ends of the short cross pole into the small grommets above each door.",
        ],
    ),
    ("pagebreak",),
    ("h2", "5. Put on the rainfly"),
    (
        "p",
        "Throw the fly over the tent with the red tab at a red corner, so the fly doors line up "
        "with the inner doors. Fasten the four corner buckles to the matching buckles at the tent "
        "corners. Wrap the Velcro tabs under the fly around the poles; they keep the fly stable in "
        "wind. Tighten the corner straps until the fly is smooth but does not touch the inner "
        "tent anywhere.",
    ),
    ("h2", "6. Stake it out"),
    (
        "ol",
        [
            "Stake the four corners first, driving each Y-stake at a 45 degree angle away from the tent. Use 4 stakes.",
            "Pull each vestibule out and stake it with 2 stakes (4 stakes for both vestibules).",
            "In wind or rain, run the 4 guy lines out about 1 m from the tent and stake them (the last 4 stakes).",
            "Re-tension the fly straps. Nylon stretches when it gets wet and cold, so check the "
            "tension again before going to sleep.",
        ],
    ),
    ("h2", "7. Ventilation"),
    (
        "p",
        "Open the two vents at the top of the fly by propping them with their Velcro struts. On "
        "cool, humid nights leave the top of one fly door unzipped to reduce condensation.",
    ),
    ("h2", "Taking it down"),
    (
        "ul",
        [
            "Pull the stakes by the loop, not by the webbing; clean and count them (12).",
            "Remove the fly and shake it; dry it before packing if you can.",
            "Unclip the inner tent, pull the pole tips out and fold the poles starting from the "
            "middle of each pole, so the shock cord is not over-stretched.",
            "Roll the tent around the pole bag and put it in the stuff sack.",
            "At home, dry everything completely before storage (see the Care Guide).",
        ],
    ),
    ("h2", "Need help?"),
    (
        "p",
        "Missing or broken parts: support@nordhaven.example. A spare pole section is NH-C2P-POLE "
        "($18.00). The tent has a 5-year limited warranty.",
    ),
]

VOLT_MANUAL = [
    ("h1", "Volt 300 Portable Power Station - User Manual"),
    (
        "p",
        "Model **Volt 300** | SKU NH-V300 | Manual version 2.1, 2025-03 | Nordhaven Supply Co., "
        "4410 NW Yeon Avenue, Portland, OR 97210, USA",
    ),
    (
        "p",
        "Thank you for choosing the Volt 300. This manual explains how to use, charge and care for "
        "your power station safely. Keep it for future reference. The Volt 300 is sold in the "
        "United States and Canada only; it is designed for 120 V, 60 Hz devices.",
    ),
    ("h2", "1. Safety instructions"),
    (
        "ul",
        [
            "Read all instructions before use. Keep the unit away from children.",
            "Do not expose the unit to rain, snow or standing water. It is not waterproof.",
            "Keep at least 10 cm of free space around the air vents while in use.",
            "Use the unit between -10 C and 40 C. Charge it only between 0 C and 40 C.",
            "Do not open, puncture, crush or modify the unit. There are no user-serviceable parts inside.",
            "Do not connect the AC outlets to your home wiring or to another power source.",
            "Do not use the Volt 300 to power life-support or critical medical equipment.",
            "The Volt 300 contains a 288 Wh lithium battery. It must not be carried on passenger "
            "aircraft and must be shipped by ground.",
        ],
    ),
    ("h2", "2. What is in the box"),
    (
        "ul",
        [
            "Volt 300 power station",
            "AC charging cable, 1.5 m (the charger is built into the unit)",
            "Car charging cable (12 V socket to DC input), 1.2 m",
            "This user manual and the warranty card",
        ],
    ),
    (
        "p",
        "Solar panels are sold separately. The Solis 60 solar panel includes a 3 m XT60 cable that "
        "plugs straight into the Volt 300.",
    ),
    ("h2", "3. Product overview"),
    ("h3", "Front panel"),
    (
        "ul",
        [
            "LCD display",
            "Main power button (press and hold 2 seconds to turn on or off)",
            "AC button with green LED and 2 x AC outlets (120 V, pure sine wave)",
            "DC button with green LED, controlling the USB ports and the 12 V car outlet",
            "1 x USB-C 100 W PD, 1 x USB-C 30 W, 2 x USB-A 12 W (5 V / 2.4 A)",
            "12 V car outlet, 10 A",
        ],
    ),
    ("h3", "Right side"),
    (
        "ul",
        [
            "AC charging input (IEC C6 socket)",
            "XT60 solar / car input, 12-28 V DC, up to 200 W",
        ],
    ),
    ("p", "The cooling fan is on the left side. The serial number is on the label under the handle."),
    ("h2", "4. Specifications"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Battery chemistry", "LiFePO4 (lithium iron phosphate)"],
            ["Capacity", "288 Wh (12.8 V, 22.5 Ah)"],
            ["Cycle life", "3,000 cycles to 80% of original capacity"],
            ["AC output", "2 outlets, 120 V 60 Hz pure sine wave, 300 W continuous, 600 W surge"],
            ["USB-C output", "1 x 100 W PD (5/9/12/15/20 V), 1 x 30 W"],
            ["USB-A output", "2 x 5 V / 2.4 A (12 W each)"],
            ["12 V car outlet", "12 V, 10 A (120 W)"],
            ["AC charging", "100-120 V; 0-80% in 1.5 hours, 100% in about 2 hours"],
            ["Solar input", "XT60, 12-28 V DC, 8 A max, 200 W max, MPPT"],
            ["Car charging", "12 V, 8 A; 0-100% in about 3.5 hours"],
            ["Pass-through charging", "Yes; switch-over time about 30 ms"],
            ["Weight", "4.1 kg (9 lb)"],
            ["Dimensions", "25 x 16 x 18 cm"],
            ["Discharge temperature", "-10 C to 40 C"],
            ["Charge temperature", "0 C to 40 C"],
            ["Warranty", "3 years"],
        ],
    ),
    ("h2", "5. Getting started"),
    (
        "ol",
        [
            "Charge the Volt 300 to 100% with the AC cable before first use. It ships at about 30%.",
            "Press and hold the main power button for 2 seconds. The display lights up.",
            "To use the AC outlets, press the AC button once; its LED turns green.",
            "To use the USB ports or the 12 V outlet, press the DC button once; its LED turns green.",
            "Plug in your device. The display shows the output power in watts.",
            "When finished, press the AC and DC buttons to turn the outputs off, then hold the main "
            "power button for 2 seconds.",
        ],
    ),
    ("h2", "6. Reading the display"),
    (
        "p",
        "The LCD shows the remaining battery in percent, the input power (W), the output power (W) "
        "and the estimated time remaining to full or to empty. Icons show which outputs are on, "
        "ECO when Eco mode is active, a fan symbol when the fan runs, a sun when solar input is "
        "detected, and a warning triangle with an error code (E01-E07) when a fault occurs. The "
        "display turns off after 30 seconds; press the main power button briefly to wake it.",
    ),
    ("pagebreak",),
    ("h2", "7. Recharging the Volt 300"),
    ("h3", "From a wall outlet"),
    (
        "p",
        "Connect the AC charging cable to the AC input and to a 100-120 V outlet. Charging starts "
        "automatically: **0-80% in 1.5 hours** and full in about 2 hours. The fan runs during AC "
        "charging; this is normal. Quiet charge mode limits AC charging to 150 W (0-100% in about "
        "2.5 hours) and keeps the fan slow. Hold the DC button for 5 seconds to switch quiet "
        "charge on or off.",
    ),
    ("h3", "From solar panels"),
    (
        "p",
        "The XT60 input accepts 12-28 V DC and up to 200 W. The built-in MPPT controller gets the "
        "most out of your panels. With one Solis 60 panel in full sun, charging from empty takes "
        "about 6.5 hours; with three Solis 60 panels in parallel, about 2.5 hours.",
    ),
    (
        "p",
        "**Connect panels in parallel, never in series.** One Solis 60 has an open-circuit voltage "
        "of 21.6 V. Two in series reach 43.2 V, which is above the 28 V limit: the Volt 300 stops "
        "solar charging and shows **E05**. Use the Nordhaven parallel Y-adapter (NH-YPAR) to "
        "connect two or three panels.",
    ),
    ("h3", "From a car"),
    (
        "p",
        "Use the included car charging cable in a 12 V socket. The car must be running, otherwise "
        "you may drain the car battery. Charging from empty takes about 3.5 hours.",
    ),
    ("h3", "Pass-through charging"),
    (
        "p",
        "You can use the outputs while the Volt 300 is charging. If wall power fails, the outputs "
        "switch to battery in about 30 ms. This is fast enough for routers, lamps and most "
        "laptops, but the Volt 300 is not a certified uninterruptible power supply (UPS), and "
        "desktop computers may restart.",
    ),
    ("h2", "8. Using the AC outlets"),
    (
        "p",
        "The AC outlets deliver up to **300 W continuously** and can handle a short surge of up to "
        "600 W, which helps small motors such as fridge compressors to start. If the total load "
        "goes above 300 W, the outlets turn off and the display shows **E03**. Remove the device "
        "and press the AC button to reset. Typical devices that are too big: electric kettles "
        "(for example the BrewPoint kettle, 1500 W), hair dryers, microwaves, space heaters and "
        "coffee makers.",
    ),
    ("h3", "Eco mode"),
    (
        "p",
        "Eco mode is on by default. It turns the AC outlets off after **2 hours** when the load "
        "stays below 10 W, so the inverter does not drain the battery when nothing is plugged in. "
        "For low-power devices such as a CPAP machine at night, turn Eco mode off: hold the AC "
        "button for **5 seconds** until ECO disappears from the display.",
    ),
    ("h2", "9. How long will my device run?"),
    (
        "p",
        "Estimate runtime with: runtime (hours) = 288 Wh x 0.85 / device power (W). The 0.85 "
        "factor accounts for inverter losses. USB and 12 V outputs are more efficient (about 0.9).",
    ),
    (
        "table",
        [
            ["Device", "Typical power", "Approximate runtime"],
            ["Smartphone (charge 0-100%)", "15 Wh per charge", "about 16 charges"],
            ["Laptop", "60 W", "about 4 hours"],
            ["12 V camping fridge", "45 W average", "about 5 hours"],
            ["CPAP without humidifier", "30 W", "about 8 hours"],
            ["LED string lights", "10 W", "about 24 hours"],
            ["Aurora X2 headlamp (full charge)", "13 Wh", "about 18 charges"],
        ],
    ),
    ("pagebreak",),
    ("h2", "10. Care, storage and transport"),
    (
        "ul",
        [
            "Store the Volt 300 at about 60% charge, in a dry place between -10 C and 40 C.",
            "Recharge it to about 60% **every 3 months** during storage; a fully empty LiFePO4 "
            "battery left for months can be damaged.",
            "Clean with a dry cloth. Keep dust out of the vents.",
            "Do not leave the unit in a closed car in summer: temperatures above 60 C trigger E01 and shorten battery life.",
            "Transport it by road only. At 288 Wh it exceeds the 160 Wh limit for lithium "
            "batteries on passenger aircraft, with or without airline approval.",
        ],
    ),
    ("h2", "11. Error codes"),
    (
        "table",
        [
            ["Code", "Meaning", "Action"],
            ["E01", "Over-temperature (above 60 C)", "Let it cool; restarts below 45 C"],
            ["E02", "Too cold to charge (below 0 C)", "Warm above 5 C before charging"],
            ["E03", "AC overload (above 300 W / 600 W surge)", "Remove load, press AC button"],
            ["E04", "Short circuit on an output", "Unplug, check cables, press output button"],
            ["E05", "Solar/DC input over 28 V", "Disconnect; wire panels in parallel"],
            ["E06", "Battery management (BMS) fault", "Stop using; contact warranty support"],
            ["E07", "Fan fault", "Clear the fan grille; contact support if it returns"],
        ],
    ),
    (
        "p",
        "Soft reset: unplug everything and hold the main power button for 15 seconds until the "
        "screen goes dark. Settings such as Eco mode are kept.",
    ),
    ("h2", "12. Troubleshooting"),
    ("h3", "The unit does not turn on"),
    (
        "p",
        "After a very deep discharge the battery protection puts the unit to sleep. Connect the "
        "AC charging cable for at least 10 seconds; the display wakes up and charging starts.",
    ),
    ("h3", "The AC outlets have no power"),
    (
        "p",
        "Press the AC button: its LED must be green. If the outlets switched off after a while "
        "with a small load, Eco mode turned them off; disable Eco mode (hold AC for 5 seconds).",
    ),
    ("h3", "Solar input shows 0 W"),
    (
        "p",
        "Check that the panel is in direct sun and the XT60 plug is fully inserted. The panel "
        "voltage must be at least 12 V for charging to start; in the early morning or under heavy "
        "cloud this may not be reached. If the display shows E05, see section 7.",
    ),
    ("h3", "The battery percentage drops quickly"),
    (
        "p",
        "The display estimate is recalibrated after a full cycle. Charge to 100%, discharge to "
        "below 10%, then charge to 100% again.",
    ),
    ("h2", "13. Warranty"),
    (
        "p",
        "The Volt 300 has a **3-year limited warranty** from the delivery date, covering defects "
        "in materials and workmanship, including battery capacity below 70% within the warranty "
        "period under normal use. Register your unit at nordhaven.example/register within 30 days "
        "of delivery for an extra 6 months of coverage. Claims: warranty@nordhaven.example with "
        "your order number, serial number and a description or photo of the problem.",
    ),
    ("h2", "14. Disposal"),
    (
        "p",
        "Do not put the Volt 300 in household waste. Take it to a battery recycling drop-off point, "
        "or contact us: Nordhaven sends a free prepaid ground label to recycle any Volt 300 at the "
        "end of its life.",
    ),
]

HEARTH_SPEC = [
    ("h1", "Hearth T4 Smart Thermostat - Technical Specifications"),
    ("p", "Model **Hearth T4** | SKU NH-HT4 | Price $169.00 | 2-year limited warranty | Sold in the US and Canada"),
    ("h2", "Compatibility"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["System voltage", "24 VAC low-voltage systems only"],
            ["Conventional systems", "up to 2 heat / 2 cool stages"],
            ["Heat pumps", "up to 2 compressor stages + 1 auxiliary/emergency stage; O/B configurable"],
            ["Not compatible", "line-voltage (120/240 V) baseboard heaters, millivolt systems"],
            ["Power", "C-wire required; Power Adapter Kit (PAK) included for homes without C-wire"],
            ["Minimum supply", "18 VAC between R and C (below this the display shows E1)"],
            ["Terminals", "R/Rh, Rc, C, W1, W2, Y1, Y2, G, O/B, AUX/E (push-in)"],
        ],
    ),
    ("h2", "Hardware"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Display", "3.5-inch colour touchscreen"],
            ["Temperature sensor accuracy", "+/-0.5 C (+/-1 F)"],
            ["Humidity sensor accuracy", "+/-3% RH"],
            ["Set-point range", "45-90 F (7-32 C)"],
            ["Dimensions", "100 x 100 x 24 mm; trim plate 150 x 150 mm"],
            ["Weight", "180 g (display and base)"],
            ["Operating temperature", "0 C to 40 C, indoor use only"],
        ],
    ),
    ("h2", "Connectivity"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Wi-Fi", "2.4 GHz only, 802.11 b/g/n, WPA2/WPA3 Personal"],
            ["Remote sensors", "up to 6 Hearth RS1 room sensors ($39.00 each, 15 m range)"],
            ["App", "Nordhaven Home for iOS 16+ and Android 11+"],
            ["Pairing", "6-digit code on the thermostat screen, valid 10 minutes"],
            ["Offline behaviour", "keeps running schedules without Wi-Fi"],
        ],
    ),
    ("h2", "Software features"),
    (
        "ul",
        [
            "Schedules with up to 6 periods per day, per weekday",
            "Away mode with geofencing (default radius 500 m); default Away temperatures 62 F heat, 82 F cool",
            "Compressor protection: 5-minute minimum off time",
            "Monthly energy reports in the app",
            "Calibration offset up to +/-5 F",
            "Over-the-air firmware updates",
        ],
    ),
    ("h2", "In the box"),
    (
        "p",
        "Display unit, base plate with bubble level, trim plate, Power Adapter Kit, 4 screws and "
        "anchors, 18 wire labels, quick start card. Typical installation time: 30-45 minutes.",
    ),
]

BATTERY_SAFETY = [
    ("h1", "Battery Safety, Storage and Travel Guide"),
    (
        "p",
        "Nordhaven Supply Co. | Applies to the Aurora X2 headlamp, Tidal BT5 speaker and Volt 300 "
        "power station | Revised 2025-06-01",
    ),
    (
        "p",
        "Lithium batteries store a lot of energy in a small space. Used correctly they are very "
        "safe. This guide explains how to charge, store, fly with and recycle the batteries in "
        "our products.",
    ),
    ("h2", "Battery overview"),
    (
        "table",
        [
            ["Product", "Battery", "Energy", "Removable?"],
            ["Aurora X2 headlamp", "18650 Li-ion, 3500 mAh, 3.6 V", "12.6 Wh", "Yes"],
            ["Tidal BT5 speaker", "Li-ion, 4,400 mAh, 3.7 V", "16.3 Wh", "No"],
            ["Volt 300 power station", "LiFePO4, 22.5 Ah, 12.8 V", "288 Wh", "No"],
        ],
    ),
    ("h2", "Flying with our products"),
    ("p", "Airline rules (FAA in the US, IATA worldwide) are based on watt-hours (Wh):"),
    (
        "ul",
        [
            "Up to 100 Wh: allowed. Devices can go in carry-on bags; spare batteries must be in carry-on bags only.",
            "100 to 160 Wh: only with airline approval, carry-on only, at most 2 spare batteries.",
            "Above 160 Wh: not allowed on passenger aircraft at all.",
        ],
    ),
    (
        "table",
        [
            ["Product", "Can I fly with it?"],
            [
                "Aurora X2",
                "Yes. Keep the lamp and any spare 18650 cells in your carry-on bag. Put "
                "spare cells in a plastic battery case so the terminals cannot touch metal.",
            ],
            ["Tidal BT5", "Yes. Carry-on recommended; switch it off completely."],
            ["Volt 300", "No. 288 Wh is above the 160 Wh limit. Ship it by ground or drive."],
        ],
    ),
    ("h2", "Charging"),
    (
        "ul",
        [
            "Use the supplied cable or a good-quality USB-C cable and a 5 V / 2 A adapter for the Aurora X2 and Tidal BT5.",
            "Charge on a hard surface, not on a bed or sofa, and not in direct sun.",
            "Charge only between 0 C and 40 C. The products block charging outside this range.",
            "Do not charge a product whose port is wet. The Tidal BT5 blocks charging and blinks "
            "amber when it detects moisture.",
        ],
    ),
    ("h2", "Storage"),
    (
        "ul",
        [
            "For long storage keep the Aurora X2 and Tidal BT5 at 40-60% charge and top them up every 6 months.",
            "Keep the Volt 300 at about 60% and recharge it every 3 months.",
            "Never leave batteries in a parked car in summer; cabin temperatures can exceed 60 C.",
            "Remove the 18650 cell from the Aurora X2 if you will not use it for more than 3 months.",
        ],
    ),
    ("h2", "Warning signs"),
    (
        "p",
        "Stop using a product immediately if the battery swells, smells sweet or chemical, hisses, "
        "or becomes very hot while charging. Unplug it if it is safe to do so, move it outdoors "
        "onto a non-flammable surface such as concrete, and contact warranty@nordhaven.example. "
        "Do not throw water on a burning lithium battery pack that is still connected to mains "
        "power; call 911.",
    ),
    ("h2", "Recycling"),
    (
        "p",
        "Never put lithium batteries in household trash or curbside recycling: they cause fires in "
        "garbage trucks and sorting plants. In the US and Canada use a battery drop-off point at a "
        "hardware store or your local hazardous waste facility. In the EU, return batteries to any "
        "battery collection point or retailer. Nordhaven sends a free prepaid ground label to "
        "recycle a Volt 300, and accepts used NH-18650-35 cells by mail with the same label.",
    ),
]

WARRANTY = [
    ("h1", "Nordhaven Limited Warranty"),
    (
        "p",
        "**Effective date: 2025-01-15.** This Limited Warranty applies to products bought new "
        "from Nordhaven Supply Co. (nordhaven.example) on or after 2025-01-15. Products bought "
        "earlier are covered by the warranty terms in force on their order date.",
    ),
    ("h2", "1. What is covered"),
    (
        "p",
        "We warrant that our products are free from defects in materials and workmanship under "
        "normal use for the period below, counted from the delivery date. If a product fails "
        "because of such a defect, we will repair it, replace it with the same or an equivalent "
        "model, or, if neither is possible, refund the purchase price.",
    ),
    ("h2", "2. Warranty periods"),
    (
        "table",
        [
            ["Product", "Warranty period"],
            ["Cascade 2P tent", "5 years"],
            ["Driftwood 20 sleeping bag", "5 years"],
            ["Volt 300 power station", "3 years (including battery capacity below 70%)"],
            ["Aurora X2 headlamp", "2 years"],
            ["Tidal BT5 speaker", "2 years"],
            ["Hearth T4 thermostat", "2 years"],
            ["BrewPoint kettle", "2 years"],
            ["Solis 60 solar panel", "2 years"],
            ["Removable batteries (e.g. Aurora X2 18650 cell, NH-18650-35)", "1 year"],
            ["Accessories (cables, stakes, Y-adapter, stuff sacks)", "1 year"],
        ],
    ),
    ("h3", "Registration bonus"),
    (
        "p",
        "Register an electronic product at nordhaven.example/register within **30 days** of "
        "delivery and we add **6 months** to its warranty period. The bonus does not apply to "
        "removable batteries or accessories.",
    ),
    ("h2", "3. What is not covered"),
    (
        "ul",
        [
            "Normal wear and tear, such as worn fabric, faded colours or scratched housings.",
            "UV degradation of tent fabric, mildew from storing gear damp.",
            "Limescale damage to the BrewPoint kettle.",
            "Water damage beyond the product's rated protection (for example submerging the Solis 60, "
            "which is IP65, or an Aurora X2 deeper than 1 m).",
            "Damage from connecting the Hearth T4 to line-voltage (120/240 V) systems.",
            "Damage from accidents, misuse, modifications or repairs by anyone other than Nordhaven.",
            "Products used commercially, for example as rental equipment.",
            "Lost or stolen parts.",
        ],
    ),
    ("pagebreak",),
    ("h2", "4. How to make a claim"),
    (
        "ol",
        [
            "Email warranty@nordhaven.example with your order number, the product's serial number "
            "(electronics), a short description of the problem and photos or a video.",
            "We reply within 2 business days with a claim number (format WC-2025-00000) and, for "
            "US and Canadian customers, a prepaid return label. EU customers receive a prepaid DHL "
            "label. Customers in the Asia pilot (Hong Kong, Singapore, Taiwan) pay postage to "
            "Portland; we pay to ship the replacement back.",
            "Send the product to our Portland warehouse with the claim number on the box.",
            "We repair, replace or refund within **10 business days** of receiving the product.",
        ],
    ),
    (
        "p",
        "Some claims can be solved without shipping: for example, we send a spare pole section "
        "for a broken Cascade 2P pole, or a new 18650 cell for an Aurora X2.",
    ),
    ("h2", "5. Replacements"),
    (
        "p",
        "A repaired or replacement product is covered for the rest of the original warranty "
        "period or for 90 days, whichever is longer.",
    ),
    ("h2", "6. Proof of purchase and transfer"),
    (
        "p",
        "Your Nordhaven order number is your proof of purchase. The warranty applies to the "
        "original buyer and to a person who received the product as a gift with a gift receipt. "
        "It is not transferable to later owners.",
    ),
    ("h2", "7. Your legal rights"),
    (
        "p",
        "This warranty gives you specific legal rights, and you may also have other rights that "
        "vary by state, province or country. In the European Union, the 2-year legal guarantee of "
        "conformity applies in addition to this Limited Warranty and is not limited by it.",
    ),
    ("h2", "8. Contact"),
    (
        "p",
        "Nordhaven Supply Co., Warranty Service, 4410 NW Yeon Avenue, Portland, OR 97210, USA. "
        "warranty@nordhaven.example, 1-800-555-0142.",
    ),
]

REWARDS = [
    ("h1", "Trailhead Rewards - Program Terms"),
    (
        "p",
        "**Effective date: 2025-05-01.** These terms replace all earlier versions of the "
        "Trailhead Rewards terms. Trailhead Rewards is the free loyalty program of Nordhaven "
        "Supply Co.",
    ),
    ("h2", "1. Joining"),
    (
        "p",
        'Membership is free. Create an account at nordhaven.example and tick "Join Trailhead '
        'Rewards". Members must be 18 or older. One membership per person.',
    ),
    ("h2", "2. Earning points"),
    (
        "ul",
        [
            "Earn **1 point for every $1** spent on merchandise (before tax and shipping). On the "
            "Canadian and EU stores, 1 point per CA$1 or per 1 euro.",
            "Points are credited **14 days after delivery**, once the order can no longer be cancelled.",
            "Buying gift cards does not earn points; you earn points when the gift card is spent.",
            "Bonus points: **200 points** in your birthday month; **50 points** for each product review "
            "with a photo (maximum 5 reviews per calendar year); **100 points** when a friend you "
            "referred places a first order of $50 or more.",
        ],
    ),
    ("h2", "3. Tiers"),
    ("p", "Your tier depends on the points you earned in the current calendar year and is reviewed on January 1 each year."),
    (
        "table",
        [
            ["Tier", "Points earned per year", "Benefits"],
            ["Base Camp", "0-499", "1 point per $1; birthday bonus"],
            ["Ridge", "500-1,499", "1.25 points per $1; free standard shipping on every order"],
            [
                "Summit",
                "1,500 or more",
                "1.5 points per $1; free expedited shipping (US); no restocking fee on returns; early access to sales",
            ],
        ],
    ),
    ("h2", "4. Redeeming points"),
    (
        "p",
        "Every **100 points = $5** off a future order (CA$5 or 5 euros on the Canadian and EU "
        "stores). Redeem in blocks of 100 points at checkout. Rewards cannot be exchanged for "
        "cash or gift cards and cannot be combined with price matching on the same item.",
    ),
    ("h2", "5. Expiry"),
    (
        "p",
        "Points expire after **18 months** without account activity. Activity means a purchase "
        "or a redemption. Tier status does not expire during the calendar year.",
    ),
    ("h2", "6. Returns and cancellations"),
    (
        "p",
        "When you return an item, the points earned on it are removed from your balance. If you "
        "paid part of an order with points and return it, the points are given back as long as "
        "they have not expired. Price-match refunds do not change your points.",
    ),
    ("h2", "7. Changes to the program"),
    (
        "p",
        "We may change or end the program with **30 days' notice** by email. Points already "
        "earned remain redeemable for at least 90 days after the program ends.",
    ),
    ("h2", "8. Contact"),
    ("p", "Questions about points: support@nordhaven.example or 1-800-555-0142."),
]

DRIFTWOOD_CARE = [
    ("h1", "Driftwood 20 Sleeping Bag - Care Guide"),
    ("p", "SKU NH-DW20 / NH-DW20-L / NH-DW20-R | 650-fill-power RDS duck down | Nordhaven Supply Co."),
    (
        "p",
        "Down is the warmest insulation for its weight, but it only stays warm when it stays "
        "lofty and clean. With the care below your Driftwood 20 keeps its 20 F (-7 C) limit "
        "rating for many years.",
    ),
    ("h2", "In the field"),
    (
        "ul",
        [
            "Sleep in clean base layers; skin oils and sweat are what flattens down over time.",
            "Air the bag out each morning: open the zipper and drape it over the tent for 15 minutes "
            "(out of direct sun for long periods).",
            "Keep it dry. Down loses most of its warmth when wet. Pack it in the compression sack "
            "inside a waterproof liner or dry bag.",
        ],
    ),
    ("h2", "At home: storage"),
    (
        "p",
        "Never store the bag compressed. Take it out of the compression sack as soon as you get "
        "home and keep it in the large **cotton storage sack** that came with it, or hang it in a "
        "closet. Long-term compression permanently reduces loft.",
    ),
    ("h2", "Washing"),
    (
        "p",
        "Wash the bag only when it is visibly dirty or has lost loft - usually **once or twice a "
        "year** at most. Spot-clean the hood and collar in between with a little down soap.",
    ),
    (
        "ol",
        [
            "Use a **front-loading washing machine**. Top-loaders with a central agitator can tear the "
            "baffles. A laundromat front-loader is fine.",
            "Close the zipper and the Velcro tabs and turn the bag inside out.",
            "Add a **down-specific detergent**. Never use regular detergent, bleach or **fabric "
            "softener**; they strip the natural oils of the down.",
            "Choose a **gentle cycle at 30 C (86 F)** with an extra rinse.",
            "Lift the wet bag out with both arms under it; wet down is heavy and can tear internal "
            "baffles if you hold it by one end.",
        ],
    ),
    ("h2", "Drying"),
    (
        "ol",
        [
            "Tumble dry on **low heat** with **3 clean tennis balls** (or dryer balls). They break up the down clumps.",
            "Drying takes **3 to 4 hours**. Check every 30 minutes and pull clumps apart by hand.",
            "The bag is dry when there are no clumps left and it feels evenly lofty. A bag that still "
            "has small clumps is still damp inside and will mildew.",
            "Finish by airing it for a day before you put it in the storage sack.",
        ],
    ),
    (
        "p",
        "Do not dry the bag on high heat, on a radiator, or in direct sun for many hours; heat damages the 15D nylon shell.",
    ),
    ("h2", "Restoring the water repellency"),
    (
        "p",
        "When water no longer beads on the shell, wash the bag as above and then spray a "
        "PFC-free DWR treatment on the outside of the shell before drying.",
    ),
    ("h2", "Repairs"),
    (
        "p",
        "Small tears: cover them with a self-adhesive nylon repair patch (rounded corners stick "
        "best). Broken zipper sliders and larger repairs are covered by the 5-year warranty when "
        "caused by a defect; otherwise we can quote a repair. Contact warranty@nordhaven.example.",
    ),
]

SOLIS_SPEC = [
    ("h1", "Solis 60 Folding Solar Panel - Specification Sheet"),
    ("p", "SKU NH-S60 | Price $149.00 | 2-year warranty | Nordhaven Supply Co."),
    (
        "p",
        "The Solis 60 is a 60-watt folding solar panel for camping, vanlife and backup power. It "
        "charges the Volt 300 power station through the included XT60 cable, and phones directly "
        "through its USB ports.",
    ),
    ("h2", "Electrical specifications"),
    (
        "table",
        [
            ["Parameter", "Value"],
            ["Peak power (Pmax)", "60 W"],
            ["Cell type", "Monocrystalline, 22% cell efficiency"],
            ["Voltage at max power (Vmp)", "18 V"],
            ["Current at max power (Imp)", "3.33 A"],
            ["Open-circuit voltage (Voc)", "21.6 V"],
            ["Short-circuit current (Isc)", "3.6 A"],
            ["Temperature coefficient of Pmax", "-0.4% per C"],
            ["USB outputs", "USB-C PD up to 30 W; USB-A QC 3.0 up to 18 W"],
            ["DC output", "XT60 cable, 3 m, included; Anderson (APP) adapter included"],
        ],
    ),
    ("p", "Values are measured at standard test conditions: 1000 W/m2 irradiance, 25 C cell temperature, AM 1.5."),
    ("h2", "Physical specifications"),
    (
        "table",
        [
            ["Parameter", "Value"],
            ["Panels", "4, folding"],
            ["Unfolded size", "136 x 46 cm"],
            ["Folded size", "46 x 33 cm"],
            ["Weight", "2.3 kg"],
            ["Ingress protection", "IP65 (panels); junction box protected with port covers closed"],
            ["Operating temperature", "-10 C to 65 C"],
            ["Mounting", "2 built-in kickstands, 6 metal grommets for hanging"],
        ],
    ),
    ("h2", "Using the Solis 60 with the Volt 300"),
    (
        "ul",
        [
            "One panel: plug the XT60 cable into the Volt 300 solar input. About 6.5 hours of full sun from empty to full.",
            "Two or three panels: connect them **in parallel** with the NH-YPAR parallel Y-adapter "
            "($19.00). Three panels: about 2.5 hours.",
            "Never connect panels in series: two Solis 60 in series reach 43.2 V open-circuit, above "
            "the Volt 300's 28 V input limit (error E05).",
        ],
    ),
    ("h2", "Real-world output"),
    (
        "p",
        "Expect 40-50 W in good midday summer sun. Heat, haze, shade on even one cell and a low sun "
        "angle all reduce output. Turn the panel towards the sun every 1-2 hours.",
    ),
]

TIDAL_MANUAL = [
    ("h1", "Tidal BT5 Waterproof Bluetooth Speaker - User Manual"),
    ("p", "SKU NH-TBT5 | Colours: Ocean Blue, Charcoal, Sunset Orange | Price $89.00 | Nordhaven Supply Co."),
    ("h2", "1. Overview"),
    (
        "p",
        "The Tidal BT5 is a 20 W stereo Bluetooth speaker that is waterproof, dustproof and "
        "floats. It plays for up to 24 hours on a charge and can be paired with a second Tidal "
        "BT5 for stereo sound (Party Pair).",
    ),
    ("h2", "2. Buttons and indicators"),
    (
        "table",
        [
            ["Control", "Function"],
            ["Power (hold 2 s)", "Turn on / off"],
            ["Bluetooth (hold 3 s)", "Enter pairing mode (LED flashes blue quickly)"],
            ["Play/Pause", "Press once: play/pause; twice: next track; during a call: answer/end"],
            ["Volume + / Volume -", "Change volume"],
            ["Bluetooth + Volume+ (hold 3 s)", "Party Pair with a second Tidal BT5"],
            ["Power + Volume- (hold 10 s)", "Factory reset (LED flashes white 3 times)"],
            ["LED red", "Charging"],
            ["LED amber blinking", "Moisture detected in the USB-C port; charging blocked"],
        ],
    ),
    ("h2", "3. Charging"),
    (
        "p",
        "Open the rubber flap and connect the USB-C cable to a 5 V / 2 A adapter. A full charge "
        "takes about **3 hours**. The battery is 4,400 mAh and gives up to **24 hours** of "
        'playback at 50% volume (about 8 hours at full volume). The speaker says "battery low" '
        "at 10%. Always make sure the port is dry before charging.",
    ),
    ("h2", "4. Pairing"),
    (
        "ol",
        [
            "Turn the speaker on. The first time, it enters pairing mode automatically.",
            "Otherwise hold the Bluetooth button for 3 seconds until the LED flashes blue quickly.",
            'Select "Tidal BT5-XXXX" on your phone (XXXX = last four digits of the serial number).',
            "The LED turns solid blue and you hear a tone.",
        ],
    ),
    (
        "p",
        "**Multipoint:** the Tidal BT5 can be connected to two devices at the same time, for "
        "example your phone and a tablet. The speaker plays from whichever device starts audio.",
    ),
    ("h2", "5. Party Pair"),
    (
        "p",
        "Link two Tidal BT5 speakers into a left/right stereo pair. Both speakers need firmware "
        "**1.4.2 or later**; update them in the Nordhaven Sound app first.",
    ),
    (
        "ol",
        [
            "Connect your phone to the first speaker.",
            "On the first speaker, hold Bluetooth + Volume+ for 3 seconds. The LED pulses white.",
            "On the second speaker, do the same within 60 seconds.",
            "When the LEDs glow steady white, the speakers are paired. The first speaker plays the left channel.",
        ],
    ),
    ("h2", "6. The Nordhaven Sound app"),
    (
        "p",
        "Use the free app for firmware updates, a 5-band equalizer, low-latency mode for video, "
        "and to rename the speaker. The app shows the battery level and firmware version.",
    ),
    ("h2", "7. Water and dust"),
    (
        "p",
        "The Tidal BT5 is rated **IP67**: fully dust-tight and waterproof to 1 m for 30 minutes. "
        "It floats with the grille facing up. Close the rubber flap before getting it wet, rinse "
        "it in fresh water after salt water or chlorine, and let it dry. If the sound is muffled "
        "after swimming, play a bass-heavy track for a minute to push water out of the grille.",
    ),
    ("h2", "8. Specifications"),
    (
        "table",
        [
            ["Item", "Specification"],
            ["Output power", "20 W (2 x 10 W)"],
            ["Frequency response", "70 Hz - 20 kHz"],
            ["Bluetooth", "5.3, range up to 30 m (100 ft) line of sight"],
            ["Codecs", "SBC, AAC"],
            ["Battery", "4,400 mAh Li-ion (16.3 Wh), up to 24 h at 50% volume"],
            ["Charging", "USB-C, 5 V / 2 A, about 3 hours"],
            ["Protection", "IP67, floats"],
            ["Weight", "540 g"],
            ["Dimensions", "19 x 7 x 7 cm"],
            ["Auto-off", "after 20 minutes without connection or audio"],
        ],
    ),
    ("h2", "9. Warranty"),
    ("p", "2-year limited warranty. Contact support@nordhaven.example with the serial number and firmware version."),
]

BREWPOINT_FAQ = [
    ("h1", "BrewPoint Kettle - Frequently Asked Questions"),
    ("p", "Models NH-BP17 (120 V) and NH-BP17-EU (230 V) | Nordhaven Supply Co."),
    ("h2", "How long does it take to boil water?"),
    (
        "p",
        "About 4 minutes for 1 L with the 1500 W US model, and about 3 minutes with the 2200 W EU "
        "model. A full 1.7 L takes about 6.5 minutes on the US model.",
    ),
    ("h2", "Why does my kettle stop before it reaches 100 C?"),
    (
        "p",
        "At altitude, water boils below 100 C - about 95 C at 1,500 m (for example in Denver). The "
        "BrewPoint detects the boil and switches off, so the display may show 95 C or so. This is "
        "normal. If it stops well below boiling at sea level, descale the kettle: scale on the "
        "sensor makes it read high.",
    ),
    ("h2", "How long does Keep Warm last?"),
    (
        "p",
        "**30 minutes** at the chosen temperature. Lifting the kettle pauses Keep Warm; put it back "
        "within 2 minutes to continue.",
    ),
    ("h2", "Is there plastic in contact with the water?"),
    (
        "p",
        "No. The interior, the lid lining and the spout filter are 304 stainless steel. Only the "
        "handle and the base are made of BPA-free plastic, and they do not touch the water.",
    ),
    ("h2", "Can I use my US kettle in Europe?"),
    (
        "p",
        "No. The NH-BP17 is built for 120 V, 60 Hz. Using it on 230 V, even with a plug adapter, "
        "destroys it and is not covered by the warranty. Buy the NH-BP17-EU on our EU store "
        "instead. Kettles should not be used with travel voltage converters.",
    ),
    ("h2", "Can I heat milk or make soup in it?"),
    (
        "p",
        "No. Use it for water only. Milk and other liquids burn onto the heating plate and damage the temperature sensor.",
    ),
    ("h2", "The display shows E1 - is it broken?"),
    (
        "p",
        "No. E1 is the dry-boil protection: the kettle was switched on empty or with less than "
        "0.5 L. Unplug it, let it cool for 10 minutes and fill above the MIN mark.",
    ),
    ("h2", "What does dSC mean?"),
    (
        "p",
        "It is the descale reminder, shown after every 90 boil cycles. Descale the kettle (vinegar "
        "or citric acid, see the Descaling Guide), then hold Keep Warm for 5 seconds with the "
        "kettle on the base to clear it.",
    ),
    ("h2", "Can I run it from a power station when camping?"),
    (
        "p",
        "Only from one that delivers at least 1500 W continuously. The Volt 300 (300 W) cannot run it and shows error E03.",
    ),
    ("h2", "The kettle is louder than before"),
    ("p", "Limescale makes kettles noisier. Descale it; in hard-water areas every 4 weeks."),
    ("h2", "What is the warranty?"),
    ("p", "2 years. Limescale damage and damage from using the wrong voltage are not covered."),
]

PAYMENTS = [
    ("h1", "Payments Policy"),
    (
        "p",
        "**Effective date: 2025-03-01.** Nordhaven Supply Co., Portland, Oregon. This policy "
        "explains which payment methods we accept, when you are charged, and how we keep your "
        "payment data safe.",
    ),
    ("h2", "1. Accepted payment methods"),
    (
        "table",
        [
            ["Store", "Accepted methods"],
            [
                "United States (USD)",
                "Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay, Klarna, Nordhaven gift cards",
            ],
            ["Canada (CAD)", "Visa, Mastercard, American Express, PayPal, Apple Pay"],
            ["European Union (EUR)", "Visa, Mastercard, PayPal, Apple Pay, Google Pay, iDEAL"],
        ],
    ),
    (
        "p",
        "We do **not** accept cash, personal checks, money orders, wire transfers or "
        "cryptocurrency. Business customers can apply for invoicing (section 6).",
    ),
    ("h2", "2. Klarna - pay in 4"),
    (
        "p",
        "On the US store you can split orders from **$50 to $1,000** into **4 interest-free "
        "payments**, every two weeks, with Klarna. The first payment is taken when the order "
        "ships. Klarna decides whether to approve the plan. Refunds for returned items are sent "
        "to Klarna and reduce your remaining payments.",
    ),
    ("h2", "3. When you are charged"),
    (
        "ul",
        [
            "When you place an order, your card is **authorized** (a temporary hold) for the order total.",
            "The card is **charged when the order ships**. If an order ships in several parcels, each "
            "parcel is charged when it ships.",
            "Pre-orders are charged when they ship.",
            "If you cancel, or an item is out of stock, the authorization is released. Depending on "
            "your bank this takes **3 to 7 business days**.",
        ],
    ),
    (
        "p",
        '**"I was charged twice"**: usually one of the two lines is the authorization hold and '
        "the other the final charge. The hold drops off within 3 to 7 business days. If both lines "
        "are still there after 7 business days, contact us with the last four digits of the card "
        "- never the full number.",
    ),
    ("h2", "4. Currencies, taxes and fees"),
    (
        "ul",
        [
            "US orders are charged in USD, Canadian orders in CAD, EU orders in EUR. We do not add "
            "any payment fee. Your bank may charge a foreign transaction fee.",
            "US sales tax is calculated from the shipping address. There is no sales tax on orders "
            "shipped to Oregon addresses.",
            "Canadian GST/HST and EU VAT are included at checkout (we ship Delivered Duty Paid).",
        ],
    ),
    ("h2", "5. Declined payments"),
    (
        "p",
        "Check that the billing address matches the address on your card statement exactly, "
        "including the postal code. EU cards require 3-D Secure confirmation in your banking app. "
        "After 3 declined attempts, checkout is locked for 30 minutes to protect against fraud.",
    ),
    ("h2", "6. Business accounts"),
    (
        "p",
        "Schools, clubs and businesses can apply for a business account with **Net 30** invoicing "
        "for orders of **$1,000 or more**. Apply at business@nordhaven.example.",
    ),
    ("h2", "7. Payment security"),
    (
        "p",
        "Card payments are processed by a PCI DSS Level 1 certified payment processor. Nordhaven "
        "never stores full card numbers or security codes. Our staff and our virtual assistant "
        "will **never ask for your full card number** by email, chat or phone. If someone does, "
        "it is a scam: report it to security@nordhaven.example.",
    ),
]

GIFT_CARDS = [
    ("h1", "Gift Card Terms and Conditions"),
    ("p", "**Effective date: 2025-01-01.** These terms apply to Nordhaven Supply Co. gift cards, digital and physical."),
    ("h2", "1. Buying gift cards"),
    (
        "ul",
        [
            "**Digital gift cards**: any whole-dollar amount from **$25 to $500**. Delivered by email "
            "right away, or on a date you choose up to 12 months ahead.",
            "**Physical gift cards**: **$25, $50 or $100**, shipped free by USPS First-Class in a greeting card sleeve.",
            "Up to 10 gift cards per order. Gift card purchases do not earn Trailhead Rewards points.",
        ],
    ),
    ("h2", "2. Using gift cards"),
    (
        "ul",
        [
            "Gift cards are in **US dollars** and can be redeemed **only on the US store** "
            "(nordhaven.example). They cannot be used on the Canadian or EU stores.",
            "You can combine up to **5 gift cards** on one order, and pay any remainder with another payment method.",
            "Gift cards cannot be used to buy other gift cards.",
            "Check your balance at nordhaven.example/giftcard with the card number and the 4-digit PIN.",
        ],
    ),
    ("h2", "3. No expiry, no fees"),
    ("p", "Nordhaven gift cards **never expire** and have no activation, inactivity or service fees."),
    ("h2", "4. Cash value"),
    (
        "p",
        "Gift cards cannot be exchanged for cash, except where the law requires it. For example, "
        "in California a remaining balance **under $10** can be paid out in cash on request; "
        "contact Customer Care.",
    ),
    ("h2", "5. Returns and refunds"),
    (
        "p",
        "Gift cards themselves cannot be returned. If you return an item you paid for with a gift "
        "card, the refund goes back as gift card credit.",
    ),
    ("h2", "6. Lost or stolen cards"),
    (
        "p",
        "Treat gift cards like cash. If a card is lost or stolen, we can replace the unused balance "
        "only if you give us the order number of the gift card purchase and the card has not yet "
        "been used by someone else.",
    ),
    ("h2", "7. Contact"),
    ("p", "support@nordhaven.example or 1-800-555-0142."),
]

# (relative path under samples/corpus, title, blocks)
PDF_DOCS = [
    ("docs/aurora-x2-spec-sheet.pdf", "Aurora X2 Headlamp - Specification Sheet", AURORA_SPEC),
    ("docs/cascade-2p-tent-setup-guide.pdf", "Cascade 2P Tent - Setup Guide", CASCADE_SETUP),
    ("docs/volt-300-user-manual.pdf", "Volt 300 Portable Power Station - User Manual", VOLT_MANUAL),
    ("docs/hearth-t4-spec-sheet.pdf", "Hearth T4 Smart Thermostat - Specifications", HEARTH_SPEC),
    ("docs/battery-safety-and-travel.pdf", "Battery Safety, Storage and Travel Guide", BATTERY_SAFETY),
    ("policies/warranty-policy.pdf", "Nordhaven Limited Warranty", WARRANTY),
    ("policies/trailhead-rewards-terms.pdf", "Trailhead Rewards - Program Terms", REWARDS),
]

DOCX_DOCS = [
    ("docs/driftwood-20-care-guide.docx", "Driftwood 20 Sleeping Bag - Care Guide", DRIFTWOOD_CARE),
    ("docs/solis-60-spec-sheet.docx", "Solis 60 Folding Solar Panel - Specification Sheet", SOLIS_SPEC),
    ("docs/tidal-bt5-user-manual.docx", "Tidal BT5 Speaker - User Manual", TIDAL_MANUAL),
    ("docs/brewpoint-kettle-faq.docx", "BrewPoint Kettle - FAQ", BREWPOINT_FAQ),
    ("policies/payments-policy.docx", "Payments Policy", PAYMENTS),
    ("policies/gift-card-terms.docx", "Gift Card Terms and Conditions", GIFT_CARDS),
]

# ---------------------------------------------------------------------------------------------
# Rendering helpers
# ---------------------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _runs(text: str) -> list[tuple[str, bool]]:
    """Split 'a **b** c' into [('a ', False), ('b', True), (' c', False)]."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in _BOLD.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], False))
        out.append((m.group(1), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def plain_text(blocks) -> str:
    """The text of a document as one string (used by --dump and handy for tests)."""
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            lines.append(_BOLD.sub(r"\1", block[1]))
        elif kind in ("ul", "ol"):
            lines.extend(_BOLD.sub(r"\1", item) for item in block[1])
        elif kind == "table":
            lines.extend(" | ".join(row) for row in block[1])
    return "\n".join(lines)


def build_pdf(path: Path, title: str, blocks) -> None:
    from xml.sax.saxutils import escape

    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    rl_config.invariant = 1  # deterministic output (no timestamps / random ids)

    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "Body", parent=base["BodyText"], fontName="Helvetica", fontSize=10.5, leading=14, spaceAfter=6, alignment=TA_LEFT
    )
    h1 = ParagraphStyle(
        "H1", parent=base["Title"], fontName="Helvetica-Bold", fontSize=20, leading=24, spaceAfter=12, alignment=TA_LEFT
    )
    h2 = ParagraphStyle(
        "H2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=14, leading=18, spaceBefore=10, spaceAfter=6
    )
    h3 = ParagraphStyle(
        "H3", parent=base["Heading3"], fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=6, spaceAfter=4
    )
    cell = ParagraphStyle("Cell", parent=body, fontSize=9.5, leading=12, spaceAfter=0)
    cell_b = ParagraphStyle("CellB", parent=cell, fontName="Helvetica-Bold")

    def markup(text: str) -> str:
        return "".join(f"<b>{escape(t)}</b>" if b else escape(t) for t, b in _runs(text))

    story = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            story.append(Paragraph(markup(block[1]), h1))
        elif kind == "h2":
            story.append(Paragraph(markup(block[1]), h2))
        elif kind == "h3":
            story.append(Paragraph(markup(block[1]), h3))
        elif kind == "p":
            story.append(Paragraph(markup(block[1]), body))
        elif kind in ("ul", "ol"):
            items = [ListItem(Paragraph(markup(t), body), leftIndent=14) for t in block[1]]
            if kind == "ul":
                story.append(ListFlowable(items, bulletType="bullet", start="\u2022", leftIndent=14))
            else:
                story.append(ListFlowable(items, bulletType="1", leftIndent=14))
        elif kind == "table":
            rows = block[1]
            data = [[Paragraph(markup(c), cell_b if i == 0 else cell) for c in row] for i, row in enumerate(rows)]
            ncols = len(rows[0])
            width = 6.8 * inch
            col_widths = [width * 0.35, width * 0.65] if ncols == 2 else [width / ncols] * ncols
            t = Table(data, colWidths=col_widths, repeatRows=1)
            t.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe7ec")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story.append(t)
            story.append(Spacer(1, 8))
        elif kind == "pagebreak":
            story.append(PageBreak())
        else:
            raise ValueError(f"unknown block kind {kind!r}")

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(0.85 * inch, 0.55 * inch, f"Nordhaven Supply Co. - {title}")
        canvas.drawRightString(LETTER[0] - 0.85 * inch, 0.55 * inch, f"Page {doc.page}")
        canvas.restoreState()

    path.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(
        str(path),
        pagesize=LETTER,
        title=title,
        author=AUTHOR,
        subject=title,
        creator="samples/build_binary_docs.py",
        leftMargin=0.85 * inch,
        rightMargin=0.85 * inch,
        topMargin=0.8 * inch,
        bottomMargin=0.9 * inch,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def build_docx(path: Path, title: str, blocks) -> None:
    import docx
    from docx.shared import Pt

    document = docx.Document()
    props = document.core_properties
    props.title = title
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.revision = 1
    document.styles["Normal"].font.size = Pt(11)

    def add_runs(paragraph, text: str) -> None:
        for t, bold in _runs(text):
            run = paragraph.add_run(t)
            run.bold = bold or None

    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            level = {"h1": 1, "h2": 2, "h3": 3}[kind]
            document.add_heading(_BOLD.sub(r"\1", block[1]), level=level)
        elif kind == "p":
            add_runs(document.add_paragraph(), block[1])
        elif kind in ("ul", "ol"):
            style = "List Bullet" if kind == "ul" else "List Number"
            for item in block[1]:
                add_runs(document.add_paragraph(style=style), item)
        elif kind == "table":
            rows = block[1]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = ""
                    para = cell.paragraphs[0]
                    if r == 0:
                        para.add_run(_BOLD.sub(r"\1", value)).bold = True
                    else:
                        add_runs(para, value)
            document.add_paragraph()
        elif kind == "pagebreak":
            document.add_page_break()
        else:
            raise ValueError(f"unknown block kind {kind!r}")

    buf = io.BytesIO()
    document.save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_deterministic_zip(buf.getvalue(), path)


def _write_deterministic_zip(data: bytes, path: Path) -> None:
    """Rewrite a zip (docx) with fixed timestamps so regeneration is byte-stable."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2025, 9, 1, 12, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    path.write_bytes(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that every generated file exists")
    parser.add_argument("--dump", metavar="RELPATH", help="print the plain text of one generated document and exit")
    args = parser.parse_args(argv)

    if args.dump:
        for rel, _title, blocks in PDF_DOCS + DOCX_DOCS:
            if rel == args.dump:
                print(plain_text(blocks))
                return 0
        print(f"unknown document {args.dump}", file=sys.stderr)
        return 2

    if args.check:
        missing = [rel for rel, _, _ in PDF_DOCS + DOCX_DOCS if not (CORPUS / rel).is_file()]
        for rel in missing:
            print(f"missing: {rel}", file=sys.stderr)
        return 1 if missing else 0

    for rel, title, blocks in PDF_DOCS:
        build_pdf(CORPUS / rel, title, blocks)
        print(f"wrote {rel}")
    for rel, title, blocks in DOCX_DOCS:
        build_docx(CORPUS / rel, title, blocks)
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
