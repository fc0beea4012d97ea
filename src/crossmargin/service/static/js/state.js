// The page's state, shared by the modules. Views are the service's account views, as sent.
export const MAX_ACCOUNTS = 6;

export const state = {
  key: null, // the API key (local storage)
  me: null, // GET /v1/me
  symbols: [], // every symbol the engine trades
  order: [], // the accounts shown, in card order
  views: {}, // account -> its latest view
  selected: null, // the account the panels below the cards show
  latestTime: null, // the newest mark time seen (seconds), to date live events
  replaying: false, // the feed is a replay: the header shows its clock
};
