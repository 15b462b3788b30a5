"""Help requests as conversations: a customer asks, support replies or notes, the customer answers.

conversation.py changes requests (who may, which state follows), emails.py
tells the other side after commit, selectors.py reads threads for the portal,
the console and the dashboard, admin.py is the console's request page.
"""
