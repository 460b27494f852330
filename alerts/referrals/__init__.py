"""The referral directory: vetted security firms, whom each alert shows, fairly."""
