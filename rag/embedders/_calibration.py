"""Texts that calibrate the int8 (static) quantization of the OpenVINO backend: activation ranges come from them.

Passages of the bundled sample corpus (samples/corpus, as ingested: chunked, personal data redacted), cut to
about 600 characters, and short support questions, so both documents and queries are represented. They
ship in the code because the quantized model is made wherever the service first starts, without the corpus.
"""

from __future__ import annotations

__all__ = ["CALIBRATION_TEXTS"]

CALIBRATION_TEXTS: tuple[str, ...] = (
    'Aurora X2 Headlamp — Frequently Asked Questions\nWhat battery does it use?\nOne removable 18650 '
    'lithium-ion cell, 3500 mAh (12.6 Wh), included. Spare cells are sold as the NH-18650-35 ($14.95). '
    'Use only button-top 18650 cells 65–68 mm long. The Aurora X2 does not accept AA or AAA batteries.',
    'Aurora X2 Rechargeable Headlamp - Specification Sheet\n30 hours\n80 hours\nabout 40 hours\n120 m\n'
    '80 m\n35 m\nThermal step-down: after 3 minutes on High the lamp reduces output to 300 lumens to '
    'manage heat. Double-click to return to High.\nPower\nItem\nBattery\nCharging port\nCharging time\n'
    'Charge indicator\nSpecification\n1 x 18650 Li-ion, 3500 mAh, 3.6 V (12.6 Wh), removable, '
    'included\nUSB-C (input only)\nabout 4 hours from empty with a 5 V / 2 A adapter\nred while '
    'charging, green when full; blinks red below 10%\nCharging temperature\n0 C to 40 C',
    'Aurora x2 troubleshooting\nPROBLEM 4: The charge indicator does not light up when plugged in '
    '---------------------------------------------------------------------- 1.',
    'Battery Safety, Storage and Travel Guide\nPage 1\nKeep the Volt 300 at about 60% and recharge it '
    'every 3 months.\nNever leave batteries in a parked car in summer; cabin temperatures can exceed '
    '60 C.\nRemove the 18650 cell from the Aurora X2 if you will not use it for more than 3 months.\n'
    'Warning signs\nStop using a product immediately if the battery swells, smells sweet or chemical, '
    'hisses, or becomes very hot while charging. Unplug it if it is safe to do so, move it outdoors '
    'onto a non-flammable surface such as concrete, and contact warranty@nordhaven.example. Do not '
    'throw water on a burning',
    "BrewPoint 1.7 L Variable-Temperature Kettle — Owner's Manual\nImportant safety instructions\nUse "
    'the kettle only on its own power base and only with the voltage printed on the base.\nNever fill '
    'above the MAX mark (1.7 L) or below the MIN mark (0.5 L). Overfilled kettles can spit boiling '
    'water.\nDo not immerse the kettle, base or cord in water. The kettle body is not '
    'dishwasher-safe.\nDo not open the lid while the water is boiling.\nDo not run the kettle from a '
    'portable power station or inverter rated below 1500 W (US) or 2200 W (EU). For example, the Volt '
    '300 power station (300 W) cannot run it.',
    'Cascade 2P Tent - Setup Guide\nSKU NH-C2P | Freestanding 3-season tent for 2 people | Nordhaven '
    'Supply Co.\nWith a little practice the Cascade 2P goes up in about 5 minutes. Pitch it once at '
    'home or in a park before your first trip so you know every part. Everything is colour-coded: red '
    'pole tips go into red corner webbing (the door corners) and grey tips go into grey webbing.\nWhat '
    'is in the stuff sack\nInner tent (mesh and 15D nylon) with 14 pole clips\nRainfly (20D ripstop '
    'nylon, 3000 mm)\nHubbed pole set (9 mm DAC aluminium) in a pole bag',
    'Driftwood 20 Sleeping Bag - Care Guide\nSKU NH-DW20 / NH-DW20-L / NH-DW20-R | 650-fill-power RDS '
    'duck down | Nordhaven Supply Co.\nDown is the warmest insulation for its weight, but it only '
    'stays warm when it stays lofty and clean. With the care below your Driftwood 20 keeps its 20 F '
    '(-7 C) limit rating for many years.',
    'Hearth T4 Smart Thermostat — Installation Guide\n1. What is in the box\nHearth T4 display unit '
    '(3.5-inch colour touchscreen)\nBase plate with push-in wire terminals and a built-in bubble '
    'level\nTrim plate (150 × 150 mm) to cover old paint marks and holes\nPower Adapter Kit (PAK) for '
    'homes without a C-wire\n4 screws and 4 wall anchors\nSheet of 18 wire labels\nPrinted quick start '
    'card',
    'Hearth T4 Smart Thermostat — Installation Guide\n9. Connect the wires\nPush any extra wire back '
    'into the wall. Do not connect two wires to the same terminal.\n10. Attach the display and turn '
    'the power back on\nLine up the display with the base and press until it clicks. Turn the breaker '
    'back on. The Hearth T4 shows the Nordhaven logo and starts in about 20 seconds.\n11. On-screen '
    'setup\nThe touchscreen guides you through these steps:\nLanguage (English, French or Spanish) and '
    'units (°F or °C).\nWiring check: the screen shows the terminals it detected. If a wire you '
    'connected is missing from the list,',
    'Hearth T4 Smart Thermostat — Troubleshooting and Error Codes\nError codes\nThe thermostat '
    'measures less than 18 VAC between R and C. Typical symptoms: the Hearth T4 reboots every few '
    'minutes, the screen goes dark when the furnace starts, or the battery icon blinks. This is the '
    'most common issue we see and it almost always means there is no C-wire. Fix: connect a C-wire at '
    'both ends (thermostat and furnace control board) or install the Power Adapter Kit (PAK) that '
    'comes in the box — see section 7 of the installation guide. Also check that the furnace access '
    'panel is closed, because its door',
    'Solis 60 faq\nSOLIS 60 FOLDING SOLAR PANEL - QUESTIONS AND ANSWERS Nordhaven Supply Co. | SKU '
    'NH-S60 | $149.00 | 2-year warranty\nQ: How much power does the Solis 60 really produce? A: The '
    'panel is rated 60 W peak under standard test conditions (1000 W/m2 sunlight, 25 C cell '
    'temperature). In real use expect 40-50 W around midday in clear summer sun with the panel aimed '
    'at the sun. Output drops with haze, low sun angle, partial shade and heat: a hot panel loses '
    'about 0.4% of its power per degree above 25 C. Seeing 40 W on a good day is normal and not a '
    'defect.',
    'Tidal bt5 quick start\nWATER IP67 means it survives 1 m of water for 30 minutes. Close the rubber '
    'flap before getting it wet. Rinse after salt water. Let it dry before charging.\nRESET Hold Power '
    '+ Volume- for 10 seconds until the LED flashes white 3 times.\nFull manual: '
    'nordhaven.example/manuals/tidal-bt5 | Help: support@nordhaven.example Limited warranty: 2 years.',
    'Tidal BT5 Waterproof Bluetooth Speaker - User Manual\n6. The Nordhaven Sound app\nUse the free '
    'app for firmware updates, a 5-band equalizer, low-latency mode for video, and to rename the '
    'speaker. The app shows the battery level and firmware version.\n7. Water and dust\nThe Tidal BT5 '
    'is rated IP67: fully dust-tight and waterproof to 1 m for 30 minutes. It floats with the grille '
    'facing up. Close the rubber flap before getting it wet, rinse it in fresh water after salt water '
    'or chlorine, and let it dry. If the sound is muffled after swimming, play a bass-heavy track for '
    'a minute to push water out of',
    'Volt 300 Portable Power Station — FAQ\nCan I use it as a UPS for my computer?\nThe Volt 300 '
    'supports pass-through charging and switches to battery in about 30 ms. That is enough for many '
    'routers and lamps but it is not a true UPS; desktop computers may restart. Do not use it to power '
    'life-support medical equipment.\nHow do I store it?\nCharge it to about 60% every 3 months and '
    'store it between -10 °C and 40 °C. LiFePO4 cells keep 80% of their capacity after 3,000 cycles.',
    'Volt 300 Portable Power Station - User Manual\nFrom solar panels\nThe XT60 input accepts 12-28 V '
    'DC and up to 200 W. The built-in MPPT controller gets the most out of your panels. With one Solis '
    '60 panel in full sun, charging from empty takes about 6.5 hours; with three Solis 60 panels in '
    'parallel, about 2.5 hours.\nConnect panels in parallel, never in series. One Solis 60 has an '
    'open-circuit voltage of 21.6 V. Two in series reach 43.2 V, which is above the 28 V limit: the '
    'Volt 300 stops solar charging and shows E05. Use the Nordhaven parallel Y-adapter (NH-YPAR) to '
    'connect two or three panels.',
    'Customer care contact\nVIRTUAL ASSISTANT ("Nordy") Nordy answers questions 24/7 from our help '
    'articles, product manuals, policies and anonymised past support cases. Nordy can: - explain '
    'product features, setup steps, error codes and care instructions; - explain our policies '
    '(returns, shipping, warranty, payments, rewards); - point you to the right form or team. Nordy '
    'cannot: - approve, issue or promise refunds, credits or replacements; - waive fees or make '
    'exceptions to a policy; - see or change orders, addresses or payment details. For those, ask '
    'Nordy to hand you over to a human agent, or',
    'International Orders: Canada and the European Union\nEuropean Union\nRestocking fee: because of '
    'EU consumer law we do not charge the 15% restocking fee on items returned within the 14-day '
    'withdrawal period, provided they were handled only as needed to check them.\nManuals are supplied '
    'in English, German, French, Spanish and Italian.\nPayment: EU card payments use 3-D Secure '
    'authentication.\nContact\nsupport@nordhaven.example — our team answers EU emails Monday–Friday, 7 '
    'a.m.–6 p.m. Pacific Time (16:00–03:00 Central European Time).',
    'Questions: support@nordhaven.example, 1-800-555-0142.\nTIME LIMIT You can ask for a price match '
    'before you buy, or within 14 days after your order date. Requests after day 14 are declined.\n'
    'WHAT WE DO NOT MATCH - Marketplace or third-party sellers (auction sites, marketplace listings, '
    'resellers). - Lightning deals and limited-quantity "doorbuster" prices, including Black Friday '
    'and Cyber Monday doorbusters. - Clearance, open-box, refurbished or used items. - Bundle prices, '
    'coupon codes, loyalty rewards or membership-only prices. - Prices that include a gift with '
    'purchase. - Typographical or',
    'Nordhaven Supply Co. — Returns Policy 2024\nHow to start a return\nEmail '
    'returns@nordhaven.example with your order number (format NH-2024-000000) and the reason for the '
    'return. An agent replies within 2 business days with instructions.\nQuestions\nContact Nordhaven '
    'Customer Care at support@nordhaven.example or call 1-800-555-0142, Monday–Friday, 7 a.m.–6 p.m. '
    'Pacific Time.',
    '亚洲配送常见问题（香港、新加坡、台湾）\n5. 哪些商品不能寄到亚洲？\nVolt 300 便携电源站（288 Wh 锂'
    '电池）属于航空危险品，不能寄往亚洲。Aurora X2 头灯和 Tidal BT5 音箱的小容量电池可以正常寄送。\n另'
    '外请注意：BrewPoint 电热水壶和 Hearth T4 温控器是按北美 120 V 电压设计的，不适合在香港、新加坡和台'
    '湾使用，因此不在亚洲销售。',
    'Trailhead Rewards - Program Terms\n1,500 or more\n1 point per $1; birthday bonus',
    'Will the Hearth T4 work without a C wire?\n<NAME>\nResolution: Hi <NAME>,\n\nThanks for the photo '
    'of the wiring behind your old thermostat - it helps a lot.\n\nGood news: you do not need the '
    'Power Adapter Kit. Your cable has five conductors,\nand the blue wire is folded back into the '
    'wall unused. You can use it as your C-wire:',
    'Headlamp brightness drops on high mode\nCustomer: The Aurora X2 headlamp is dimming after a few '
    'minutes on the high setting, even with a full charge. Defective? Order <ORDER_NO>. Tel <PHONE>.\n'
    'Resolution: Known behaviour: thermal step-down from 650 to 300 lumens after 3 minutes on High. '
    'Double-click returns to High. Not a defect.',
    'Price match request\nCustomer: I bought the Cascade 2P for $349 on July 28 (order <ORDER_NO>). '
    'Another authorized outdoor retailer has the same tent in stock for $319 with free shipping. Can '
    'you match? <PHONE>.\nResolution: Verified the competitor offer (same model, in stock, authorized '
    'retailer, total delivered price $319.00). Within the 14-day price match window. Refunded the '
    '$30.00 difference to the original payment method.',
    'How long do I have to return an item?',
    'My headlamp will not charge',
    'Can I take the power station on a plane?',
    'What does error code E3 mean?',
    'Do you ship to Canada, and who pays the duties?',
    'How do I descale the kettle?',
    'Is the speaker waterproof?',
    'Where can I find my order number?',
)
