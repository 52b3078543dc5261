/**
 * Code points assigned in Unicode 15.0-17.0, which the reference Python (3.11, unicodedata 14.0)
 * still calls unassigned ("Cn") and so drops while cleaning text. Node's newer ICU knows them, so
 * without this list a prompt with a recent emoji (e.g. U+1FA77 pink heart) would get extra tokens
 * that diffusers never sees.
 *
 * Generated once: the code points with unicodedata.category(c) == "Cn" in Python 3.11 that
 * /\p{Cn}/u does not match in Node 20.20 (ICU 78.2, Unicode 17.0), merged into ranges.
 */
export const ASSIGNED_AFTER_UNICODE_14 = String.raw`
\u{88F}\u{897}\u{C5C}\u{CDC}\u{CF3}\u{ECE}\u{1ACF}-\u{1ADD}\u{1AE0}-\u{1AEB}\u{1B4E}-\u{1B4F}
\u{1B7F}\u{1C89}-\u{1C8A}\u{20C1}\u{2427}-\u{2429}\u{2B96}\u{2FFC}-\u{2FFF}\u{31E4}-\u{31E5}
\u{31EF}\u{A7CB}-\u{A7CF}\u{A7D2}\u{A7D4}\u{A7DA}-\u{A7DC}\u{A7F1}\u{FBC3}-\u{FBD2}
\u{FD90}-\u{FD91}\u{FDC8}-\u{FDCE}\u{105C0}-\u{105F3}\u{10940}-\u{10959}\u{10D40}-\u{10D65}
\u{10D69}-\u{10D85}\u{10D8E}-\u{10D8F}\u{10EC2}-\u{10EC7}\u{10ED0}-\u{10ED8}\u{10EFA}-\u{10EFF}
\u{1123F}-\u{11241}\u{11380}-\u{11389}\u{1138B}\u{1138E}\u{11390}-\u{113B5}\u{113B7}-\u{113C0}
\u{113C2}\u{113C5}\u{113C7}-\u{113CA}\u{113CC}-\u{113D5}\u{113D7}-\u{113D8}\u{113E1}-\u{113E2}
\u{116D0}-\u{116E3}\u{11B00}-\u{11B09}\u{11B60}-\u{11B67}\u{11BC0}-\u{11BE1}\u{11BF0}-\u{11BF9}
\u{11DB0}-\u{11DDB}\u{11DE0}-\u{11DE9}\u{11F00}-\u{11F10}\u{11F12}-\u{11F3A}\u{11F3E}-\u{11F5A}
\u{1342F}\u{13439}-\u{13455}\u{13460}-\u{143FA}\u{16100}-\u{16139}\u{16D40}-\u{16D79}
\u{16EA0}-\u{16EB8}\u{16EBB}-\u{16ED3}\u{16FF2}-\u{16FF6}\u{187F8}-\u{187FF}\u{18CFF}
\u{18D09}-\u{18D1E}\u{18D80}-\u{18DF2}\u{1B132}\u{1B155}\u{1CC00}-\u{1CCFC}\u{1CD00}-\u{1CEB3}
\u{1CEBA}-\u{1CED0}\u{1CEE0}-\u{1CEF0}\u{1D2C0}-\u{1D2D3}\u{1DF25}-\u{1DF2A}\u{1E030}-\u{1E06D}
\u{1E08F}\u{1E4D0}-\u{1E4F9}\u{1E5D0}-\u{1E5FA}\u{1E5FF}\u{1E6C0}-\u{1E6DE}\u{1E6E0}-\u{1E6F5}
\u{1E6FE}-\u{1E6FF}\u{1F6D8}\u{1F6DC}\u{1F774}-\u{1F77F}\u{1F7D9}\u{1F8B2}-\u{1F8BB}
\u{1F8C0}-\u{1F8C1}\u{1F8D0}-\u{1F8D8}\u{1FA54}-\u{1FA57}\u{1FA75}-\u{1FA77}\u{1FA87}-\u{1FA8A}
\u{1FA8E}-\u{1FA8F}\u{1FAAD}-\u{1FAAF}\u{1FABB}-\u{1FABF}\u{1FAC6}\u{1FAC8}\u{1FACD}-\u{1FACF}
\u{1FADA}-\u{1FADC}\u{1FADF}\u{1FAE8}-\u{1FAEA}\u{1FAEF}\u{1FAF7}-\u{1FAF8}\u{1FBCB}-\u{1FBEF}
\u{1FBFA}\u{2B739}-\u{2B73F}\u{2CEA2}-\u{2CEAD}\u{2EBF0}-\u{2EE5D}\u{31350}-\u{33479}`.replaceAll("\n", "");
