package authserver_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

// browser is a user agent for the server's pages: cookies, redirects, and
// HTML forms posted the way a browser without JavaScript posts them.
type browser struct {
	t      testing.TB
	client *http.Client

	mu       sync.Mutex
	requests []string // method and URL of every request, redirects included
}

func newBrowser(t testing.TB, base http.RoundTripper) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.client = &http.Client{Jar: jar, Transport: recorder{b, base}}
	return b
}

type recorder struct {
	b    *browser
	base http.RoundTripper
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.b.mu.Lock()
	r.b.requests = append(r.b.requests, req.Method+" "+req.URL.String())
	r.b.mu.Unlock()
	return r.base.RoundTrip(req)
}

// history returns the requests made since the last call.
func (b *browser) history() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.requests
	b.requests = nil
	return h
}

// page is a response as the browser ended on it, after redirects.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
	forms  []form
}

type form struct {
	action  string
	method  string
	fields  url.Values // inputs with a name, as the page filled them
	buttons []field    // submit buttons with a name
}

type field struct{ name, value string }

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return b.read(resp)
}

// submit posts the page's only form as if its button with that value was
// pressed, with the fields in set replaced and those in drop left out.
func (b *browser) submit(p page, button string, set map[string]string, drop ...string) page {
	b.t.Helper()
	if len(p.forms) != 1 {
		b.t.Fatalf("page %s has %d forms, want 1; body:\n%s", p.url, len(p.forms), p.body)
	}
	f := p.forms[0]
	if !strings.EqualFold(f.method, "post") {
		b.t.Fatalf("form method is %q, want post", f.method)
	}
	values := url.Values{}
	for k, v := range f.fields {
		values[k] = append([]string(nil), v...)
	}
	pressed := false
	for _, btn := range f.buttons {
		if btn.value == button {
			values.Set(btn.name, btn.value)
			pressed = true
		}
	}
	if !pressed {
		b.t.Fatalf("form has no button with value %q: %+v", button, f.buttons)
	}
	for k, v := range set {
		values.Set(k, v)
	}
	for _, k := range drop {
		values.Del(k)
	}
	action, err := p.url.Parse(f.action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", f.action, err)
	}
	return b.post(action.String(), values)
}

func (b *browser) post(target string, values url.Values) page {
	b.t.Helper()
	resp, err := b.client.PostForm(target, values)
	if err != nil {
		b.t.Fatalf("POST %s: %v", target, err)
	}
	return b.read(resp)
}

func (b *browser) read(resp *http.Response) page {
	b.t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		p.forms = parseForms(string(body))
	}
	return p
}

// parseForms finds the forms of an HTML document with their inputs and
// submit buttons.
func parseForms(doc string) []form {
	var forms []form
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return forms
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attr := func(name string) string {
				for _, a := range tok.Attr {
					if a.Key == name {
						return a.Val
					}
				}
				return ""
			}
			switch tok.Data {
			case "form":
				forms = append(forms, form{action: attr("action"), method: attr("method"), fields: url.Values{}})
			case "input":
				if len(forms) > 0 && attr("name") != "" {
					forms[len(forms)-1].fields.Set(attr("name"), attr("value"))
				}
			case "button":
				if len(forms) > 0 && attr("name") != "" {
					f := &forms[len(forms)-1]
					f.buttons = append(f.buttons, field{attr("name"), attr("value")})
				}
			}
		}
	}
}
